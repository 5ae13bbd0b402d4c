"""The packaged template, made once per session by the same code as `make package`."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

STAGE = "prod"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def template_path(tmp_path_factory) -> Path:
    """sam.yaml without the layers and the image context (fast: Chalice's package is cached)."""
    from infra.aws.package import package
    return package(STAGE, tmp_path_factory.mktemp("package-template"), artifacts=False)


@pytest.fixture(scope="session")
def template(template_path) -> dict:
    return _load(template_path)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory) -> Path:
    """A full `make package` output folder: template, deployment.zip, layers/, image/."""
    from infra.aws.package import package
    return package(STAGE, tmp_path_factory.mktemp("package-full")).parent


def functions(template: dict) -> dict[str, dict]:
    """Logical id -> properties of every function, with SAM Globals merged as SAM merges them."""
    glob = template.get("Globals", {}).get("Function", {})
    out = {}
    for logical, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = dict(res["Properties"])
        env = {**glob.get("Environment", {}).get("Variables", {}),
               **props.get("Environment", {}).get("Variables", {})}
        props["Environment"] = {"Variables": env}
        out[logical] = props
    return out


def handler_of(props: dict) -> str:
    return props["ImageConfig"]["Command"][0] if props.get("PackageType") == "Image" else props["Handler"]
