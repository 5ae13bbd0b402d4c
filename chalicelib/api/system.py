"""GET /system/storage: what the bucket holds, per prefix, against the storage quota.

The quota is a setting (STORAGE_QUOTA_BYTES via chalicelib.config, when it
has one) with a default of 500 GB: S3 has no capacity, so "free space" is
what is left of the budget the operator chose.
"""
from __future__ import annotations

from chalicelib import db, storage
from chalicelib.auth.users import require_platform_admin
from chalicelib.config import get_settings

DEFAULT_QUOTA_BYTES = 500 * 1024**3
OTHER = "other"
_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human(n: int) -> str:
    """Bytes as the contract writes them: "230GB", "1.5MB", "0B" (1024-based)."""
    value, unit = float(n), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    text = f"{value:.0f}" if value >= 100 or value == int(value) else f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text}{_UNITS[unit]}"


def quota_bytes() -> int:
    """The configured storage budget, or the default."""
    configured = getattr(get_settings(), "storage_quota_bytes", None)
    return int(configured) if configured else DEFAULT_QUOTA_BYTES


def usage(user: dict) -> dict:
    """Bytes and objects per prefix from a full listing of the bucket (platform admins)."""
    require_platform_admin(user)
    totals = {prefix: [0, 0] for prefix in (*storage.PREFIXES, OTHER)}
    for obj in storage.iter_objects(""):
        prefix = next((p for p in storage.PREFIXES if obj["Key"].startswith(p)), OTHER)
        totals[prefix][0] += 1
        totals[prefix][1] += int(obj.get("Size", 0))
    used = sum(size for _, size in totals.values())
    total = quota_bytes()
    videos = db.fetch_one("SELECT count(*) AS n FROM videos WHERE deleted_at IS NULL")["n"]
    return {
        "total_space": human(total), "used_space": human(used),
        "free_space": human(max(0, total - used)), "video_count": videos,
        "total_bytes": total, "used_bytes": used, "free_bytes": max(0, total - used),
        "object_count": sum(n for n, _ in totals.values()),
        "by_prefix": {p: {"objects": n, "bytes": size, "human": human(size)}
                      for p, (n, size) in totals.items()},
    }
