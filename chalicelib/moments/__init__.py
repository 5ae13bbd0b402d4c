"""Highlights: finding moments in a clip from its speech and sound, refining them, cutting clips."""
