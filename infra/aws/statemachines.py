"""Every stepfunctions/*.asl.json as a state machine, its ${Placeholders} filled by CloudFormation.

A placeholder `${<Name>FunctionArn}` names the app function `<name>` (snake
case), `pipeline_<name>` or `<machine>_<name>`; exactly one must exist. Other
placeholders must be listed in OTHER_SUBSTITUTIONS.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASL_DIR = ROOT / "stepfunctions"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
FUNCTION_PLACEHOLDER = re.compile(r"^([A-Za-z0-9]+)FunctionArn$")

# Placeholders that are not functions -> their CloudFormation value.
OTHER_SUBSTITUTIONS: dict[str, dict] = {
    "BucketName": {"Ref": "MediaBucketName"},
}

# The environment variable through which the code learns each machine's ARN.
ENV_NAMES = {"pipeline": "STATE_MACHINE_ARN"}


def machines() -> dict[str, Path]:
    """Machine stem (file name without .asl.json) -> path."""
    return {p.name.removesuffix(".asl.json"): p for p in sorted(ASL_DIR.glob("*.asl.json"))}


def env_name(stem: str) -> str:
    return ENV_NAMES.get(stem, f"{stem.upper()}_STATE_MACHINE_ARN")


def definition(path: Path) -> dict:
    return json.loads(path.read_text())


def placeholders(path: Path) -> set[str]:
    return set(PLACEHOLDER.findall(path.read_text()))


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def function_for(placeholder: str, stem: str, functions: set[str]) -> str | None:
    """The app function a `${XxxFunctionArn}` placeholder names; None if it is not a function placeholder."""
    m = FUNCTION_PLACEHOLDER.match(placeholder)
    if not m:
        return None
    snake = _snake(m.group(1))
    singular = stem[:-1] if stem.endswith("s") else stem
    candidates = dict.fromkeys([snake, f"pipeline_{snake}", f"{stem}_{snake}", f"{singular}_{snake}"])
    hits = [c for c in candidates if c in functions]
    if len(hits) != 1:
        raise LookupError(f"stepfunctions/{stem}.asl.json: ${{{placeholder}}} must name exactly one app "
                          f"function among {list(candidates)}; found {hits}")
    return hits[0]


def substitutions(stem: str, path: Path, functions: set[str]) -> tuple[dict[str, str], dict[str, dict]]:
    """({placeholder: function name}, {placeholder: other CloudFormation value}) for one machine."""
    by_function, other = {}, {}
    for name in sorted(placeholders(path)):
        fn = function_for(name, stem, functions)
        if fn:
            by_function[name] = fn
        elif name in OTHER_SUBSTITUTIONS:
            other[name] = OTHER_SUBSTITUTIONS[name]
        else:
            raise LookupError(f"stepfunctions/{stem}.asl.json: no value for ${{{name}}} "
                              "(add it to infra/aws/statemachines.py OTHER_SUBSTITUTIONS)")
    return by_function, other
