"""Highlights, clip extraction and conflict-free metadata editing (issue 8)."""
