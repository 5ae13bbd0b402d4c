"""Conflict-free editing of video metadata from several devices (CRDT + operation log)."""
