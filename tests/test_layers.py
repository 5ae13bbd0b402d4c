"""No import in chalicelib runs from a lower layer to a higher one (chalicelib.LAYERS)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chalicelib import LAYERS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _layer(module: str) -> int | None:
    """Index of the layer that declares module (longest declared prefix), None if undeclared."""
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def _imports(path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, chalicelib module) of every import in the file, lazy ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("chalicelib.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and (node.module == "chalicelib" or node.module.startswith("chalicelib.")):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.append((node.lineno, sub if sub in known else node.module))
    return out


def test_every_module_is_in_a_layer():
    undeclared = [m for m in _modules() if m != "chalicelib" and _layer(m) is None]
    assert not undeclared, f"declare these in chalicelib.LAYERS (chalicelib/__init__.py): {undeclared}"


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    modules = _modules()
    upward = []
    for module, path in modules.items():
        if module == "chalicelib":
            continue
        here = _layer(module)
        for line, target in _imports(path, set(modules)):
            there = _layer(target)
            if here is not None and there is not None and there > here:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({LAYERS[here][0]}) imports "
                              f"{target} ({LAYERS[there][0]})")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The walk finds lazy imports and `from package import module` forms."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from chalicelib.api import http\n    import chalicelib.pipeline.step\n")
    found = dict((t, l) for l, t in _imports(source, {"chalicelib.api.http"}))
    assert found == {"chalicelib.api.http": 2, "chalicelib.pipeline.step": 3}
    assert _layer("chalicelib.api.http") > _layer("chalicelib.pipeline.step") > _layer("chalicelib.db")
