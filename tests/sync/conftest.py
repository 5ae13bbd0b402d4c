"""Fixtures of the sync tests: the API tests' crew (a stream with an admin, a creator who
uploaded two videos, a viewer and an outsider)."""
from __future__ import annotations

from tests.api.test_videos import add_member, crew  # noqa: F401
