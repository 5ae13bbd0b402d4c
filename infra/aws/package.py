"""`make package`: the Chalice app as one SAM template, split and locked down for AWS.

    python -m infra.aws.package --stage prod --out DIR

Runs Chalice's own packager (the code behind `chalice package
--merge-template infra/aws/merge.yaml`) with two additions Chalice lacks:

* `@app.on_s3_event` becomes a SAM S3 event on the bucket this template
  creates (Chalice refuses it because it cannot change the notifications of
  an existing bucket);
* a post-processing step (`finish`) that splits the API into one function
  per route group (routes.py) and points each path of the API's swagger at
  its group's function, gives every function its own least-privilege role
  (iam.py, functions.py), packages the heavy pipeline functions as the media
  container image or with the embed layer (layers.py), adds the state
  machines with DefinitionSubstitutions (statemachines.py), the settings
  (settings.py), log groups, X-Ray and the database's VPC.

DIR receives sam.yaml, deployment.zip, layers/<name>/ and image/ (the build
context of the media image). Nothing here needs AWS credentials or Docker.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import logging
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any, Iterator

import yaml

from infra.aws import functions as fns
from infra.aws import iam, layers, routes, settings, statemachines

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
MERGE_TEMPLATE = Path(__file__).with_name("merge.yaml")
DOCKERFILE = ROOT / "layers" / "transcode" / "Dockerfile"
TEMPLATE_NAME = "sam.yaml"
_ROLE_PLACEHOLDER = "arn:aws:iam::000000000000:role/replaced-by-infra-aws-package"
_INTEGRATION_URI = ("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
                    "${%s.Arn}/invocations")


def _chalice_classes() -> Any:
    """Chalice's packaging pieces, imported only when packaging."""
    from chalice import package as cp
    from chalice.config import Config

    class LambdaConfig(Config):
        """Chalice picks the runtime from the local Python; AWS gets layers.RUNTIME (see layers.py)."""

        @property
        def lambda_python_version(self) -> str:
            return layers.RUNTIME

    class SAMGenerator(cp.SAMTemplateGenerator):
        """Chalice's SAM generator that also records its functions and emits the S3 trigger."""

        def __init__(self, config: Any, options: Any) -> None:
            super().__init__(config, options)
            self.functions: dict[str, tuple[str, str]] = {}   # chalice name -> (logical id, deployed name)

        def _generate_lambdafunction(self, resource: Any, template: dict) -> None:
            super()._generate_lambdafunction(resource, template)
            self.functions[resource.resource_name] = (cp.to_cfn_resource_name(resource.resource_name),
                                                      resource.function_name)

        def _generate_s3bucketnotification(self, resource: Any, template: dict) -> None:
            # The bucket is in this template, so SAM can wire the notification and the permission.
            logical = cp.to_cfn_resource_name(resource.lambda_function.resource_name)
            rules = ([{"Name": "prefix", "Value": resource.prefix}] if resource.prefix else []) + \
                    ([{"Name": "suffix", "Value": resource.suffix}] if resource.suffix else [])
            event = {"Type": "S3", "Properties": {"Bucket": {"Ref": "MediaBucket"}, "Events": resource.events}}
            if rules:
                event["Properties"]["Filter"] = {"S3Key": {"Rules": rules}}
            template["Resources"][logical]["Properties"].setdefault("Events", {})["Upload"] = event

    return cp, LambdaConfig, SAMGenerator


def package(stage: str, out: Path, *, artifacts: bool = True) -> Path:
    """Write DIR/sam.yaml (and, with `artifacts`, the layers and the image context); the template's path."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")   # Chalice asks for a region; none is used
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    built = {name: layers.build(name) for name in layers.LAYERS} if artifacts else {}

    from chalice.cli.factory import CLIFactory
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
    from chalice.deploy.deployer import create_build_stage
    from chalice.deploy.swagger import CFNSwaggerGenerator
    from chalice.utils import UI, OSUtils

    cp, LambdaConfig, SAMGenerator = _chalice_classes()
    factory = CLIFactory(str(ROOT))
    user_params: dict[str, Any] = {"manage_iam_role": False, "iam_role_arn": _ROLE_PLACEHOLDER}
    config = LambdaConfig(chalice_stage=stage, user_provided_params=user_params,
                          config_from_disk=factory.load_project_config(),
                          default_params={"project_dir": str(ROOT), "api_gateway_stage": "api",
                                          "api_gateway_endpoint_type": "EDGE", "autogen_policy": False})
    user_params["chalice_app"] = functools.partial(factory.load_chalice_app, config.environment_variables)
    osutils = OSUtils()
    generator = SAMGenerator(config, factory.create_package_options())
    serializer = cp.YAMLTemplateSerializer()
    finisher = _Finish(osutils, generator, stage, config.app_name, built)
    packager = cp.AppPackager(
        generator,
        cp.ResourceBuilder(ApplicationGraphBuilder(), DependencyBuilder(),
                           create_build_stage(osutils, UI(), CFNSwaggerGenerator(), config)),
        cp.CompositePostProcessor([
            cp.SAMCodeLocationPostProcessor(osutils=osutils),
            cp.TemplateMergePostProcessor(osutils=osutils, merger=cp.TemplateDeepMerger(),
                                          template_serializer=serializer,
                                          merge_template=str(MERGE_TEMPLATE)),
            finisher]),
        serializer, osutils)
    with _pip_targets_runtime():
        packager.package_app(config, str(out), stage)
    template_path = out / TEMPLATE_NAME
    template_path.write_text(dump_yaml(finisher.template))
    if artifacts:
        _stage_layers(out, built)
        _stage_image(out, built["image"])
    return template_path


@contextlib.contextmanager
def _pip_targets_runtime() -> Iterator[None]:
    """Make the pip that Chalice runs pick wheels for the Lambda runtime's Python.

    Chalice asks pip for the local interpreter's wheels first and then for
    Lambda-compatible ones, without naming a Python version: run from 3.11
    for a 3.12 runtime, it would find no cp312 wheel. pip reads these two
    options from the environment.
    """
    saved = {k: os.environ.get(k) for k in ("PIP_PYTHON_VERSION", "PIP_ONLY_BINARY")}
    os.environ.update(PIP_PYTHON_VERSION=layers.PYTHON_VERSION, PIP_ONLY_BINARY=":all:")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Finish:
    """The post-processing step (a Chalice TemplatePostProcessor)."""

    def __init__(self, osutils: Any, generator: Any, stage: str, app_name: str,
                 built: dict[str, Path]) -> None:
        self.generator, self.stage, self.built = generator, stage, built
        self.names = iam.Names(app_name, stage)
        self.template: dict = {}

    def process(self, template: dict, config: Any, outdir: str, chalice_stage_name: str) -> None:
        from app import app as chalice_app

        res = template["Resources"]
        _split_api(template, chalice_app.routes, self.names)
        for name, (logical, deployed) in sorted(self.generator.functions.items()):
            if name == "api_handler":
                continue
            _configure_pipeline_function(res, logical, deployed, name, self.names)
        functions = {n: ids for n, ids in self.generator.functions.items() if n != "api_handler"}
        _add_state_machines(template, functions, self.names)
        for logical, props in _functions(template):
            props["Tracing"] = "Active"
            res[f"{logical}Logs"] = {"Type": "AWS::Logs::LogGroup", "Properties": {
                "LogGroupName": f"/aws/lambda/{props['FunctionName']}",
                "RetentionInDays": {"Ref": "LogRetentionDays"}}}
        for lname in sorted({ln for n in functions for ln in fns.spec_for(n).layers}):
            res[_layer_id(lname)] = {"Type": "AWS::Serverless::LayerVersion", "Properties": {
                "LayerName": self.names.function(f"{lname}-layer"),
                "Description": layers.LAYERS[lname].why[:256],
                "ContentUri": f"./layers/{lname}",
                "CompatibleRuntimes": [layers.RUNTIME],
                "CompatibleArchitectures": ["x86_64"],
                "RetentionPolicy": "Delete"}}
        template["Globals"] = {"Function": {"Environment": {"Variables": settings.global_environment(
            self.names.app, self.stage)}}}
        template["Resources"]["RestAPI"]["Properties"]["TracingEnabled"] = True
        _check_no_placeholder_roles(template)
        order = ("AWSTemplateFormatVersion", "Transform", "Description", "Parameters", "Conditions",
                 "Globals", "Resources", "Outputs")
        self.template = {k: template[k] for k in order if k in template}
        self.template.update({k: v for k, v in template.items() if k not in order})


# ------------------------------------------------------------------ the API split

def _functions(template: dict) -> list[tuple[str, dict]]:
    return [(k, v["Properties"]) for k, v in sorted(template["Resources"].items())
            if v["Type"] == "AWS::Serverless::Function"]


def _group_id(group: str) -> str:
    return "Api" + "".join(p.capitalize() for p in group.split("_"))


def _layer_id(name: str) -> str:
    return name.capitalize() + "Layer"


def _split_api(template: dict, app_routes: dict, names: iam.Names) -> None:
    """One function per route group in place of Chalice's single APIHandler."""
    res = template["Resources"]
    handler = res.pop("APIHandler")
    res.pop("APIHandlerInvokePermission")
    for key in ("APIHandlerArn", "APIHandlerName"):
        template["Outputs"].pop(key, None)
    paths = res["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    by_group = routes.groups_for(app_routes)
    specs = {g.name: g for g in routes.ROUTE_GROUPS}
    for group, members in by_group.items():
        logical, spec = _group_id(group), specs[group]
        deployed = names.function(f"api_{group}")
        props = copy.deepcopy(handler["Properties"])
        props.update(FunctionName=deployed, MemorySize=spec.memory, Timeout=spec.timeout,
                     Description=f"API {group}: {spec.why}"[:256], Role={"Fn::GetAtt": [f"{logical}Role", "Arn"]},
                     VpcConfig=_VPC)
        res[logical] = {"Type": "AWS::Serverless::Function", "Properties": props}
        res[f"{logical}Role"] = fns.api_role(group, names)
        res[f"{logical}InvokePermission"] = {"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": {"Ref": logical}, "Action": "lambda:InvokeFunction",
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": {"Fn::Sub": ["arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}"
                                      ":${RestAPIId}/*", {"RestAPIId": {"Ref": "RestAPI"}}]}}}
        for path, method in members:
            integration = paths[path][method.lower()]["x-amazon-apigateway-integration"]
            integration["uri"] = {"Fn::Sub": _INTEGRATION_URI % logical}
    leftover = [f"{m.upper()} {p}" for p, ms in paths.items() for m, op in ms.items()
                if "APIHandler" in str(op.get("x-amazon-apigateway-integration", {}).get("uri"))]
    if leftover:
        raise RuntimeError(f"integrations not assigned to a route group: {leftover}")


_VPC = {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}


# ------------------------------------------------------------------ pipeline functions

def _configure_pipeline_function(res: dict, logical: str, deployed: str, name: str,
                                 names: iam.Names) -> None:
    spec = fns.spec_for(name)
    props = res[logical]["Properties"]
    handler = props["Handler"]
    props.update(FunctionName=deployed, Description=f"{name}: {spec.why}"[:256],
                 Role={"Fn::GetAtt": [f"{logical}Role", "Arn"]},
                 EphemeralStorage={"Size": spec.ephemeral_mb})
    if spec.memory:
        props["MemorySize"] = spec.memory
    if spec.timeout:
        props["Timeout"] = spec.timeout
    if spec.in_vpc:
        props["VpcConfig"] = _VPC
    if spec.environment:
        props.setdefault("Environment", {"Variables": {}})["Variables"].update(spec.environment)
    if spec.image:
        for key in ("Runtime", "Handler", "CodeUri", "Layers"):
            props.pop(key, None)
        props.update(PackageType="Image", ImageUri={"Ref": "MediaImageUri"},
                     ImageConfig={"Command": [handler]})
    elif spec.layers:
        props["Layers"] = [{"Ref": _layer_id(ln)} for ln in spec.layers]
    res[f"{logical}Role"] = fns.function_role(name, names)


# ------------------------------------------------------------------ state machines

def _add_state_machines(template: dict, functions: dict[str, tuple[str, str]], names: iam.Names) -> None:
    res = template["Resources"]
    for stem, path in statemachines.machines().items():
        by_function, other = statemachines.substitutions(stem, path, set(functions))
        logical = "".join(p.capitalize() for p in re.split(r"[-_]", stem)) + "StateMachine"
        machine_name = names.state_machine(stem)
        subs: dict[str, Any] = {ph: {"Fn::GetAtt": [functions[fn][0], "Arn"]} for ph, fn in by_function.items()}
        subs.update(other)
        res[f"{logical}Logs"] = {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": f"/aws/vendedlogs/states/{machine_name}",
            "RetentionInDays": {"Ref": "LogRetentionDays"}}}
        res[f"{logical}Role"] = iam.states_role(machine_name, sorted({functions[fn][1]
                                                                      for fn in by_function.values()}))
        res[logical] = {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "StateMachineName": machine_name,
            "StateMachineType": "STANDARD",
            "Definition": statemachines.definition(path),
            "DefinitionSubstitutions": subs,
            "RoleArn": {"Fn::GetAtt": [f"{logical}Role", "Arn"]},
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": {"Level": "ERROR", "IncludeExecutionData": False, "Destinations": [
                {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [f"{logical}Logs", "Arn"]}}}]},
        }}
        template["Outputs"][f"{logical}Arn"] = {"Value": {"Ref": logical}}


def _check_no_placeholder_roles(template: dict) -> None:
    stale = [k for k, p in _functions(template) if p.get("Role") == _ROLE_PLACEHOLDER]
    if stale:
        raise RuntimeError(f"functions without a role: {stale}")


# ------------------------------------------------------------------ output

class _NoAliasDumper(yaml.SafeDumper):
    """CloudFormation tools do not all read YAML anchors: write repeated values out."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(template: dict) -> str:
    """The template as block YAML, each IAM statement preceded by its reason as a comment."""
    text = yaml.dump(template, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False, width=120)
    lines = []
    for line in text.splitlines():
        m = re.match(r"^(\s*)- Sid: (\w+)$", line)
        if m and m.group(2) in iam.REASONS:
            lines.append(f"{m.group(1)}# {iam.REASONS[m.group(2)]}")
        lines.append(line)
    header = ("# Generated by `make package` (infra/aws/package.py) from the Chalice app; do not edit.\n"
              "# The API is split into one function per route group (infra/aws/routes.py); every\n"
              "# function has its own role, and each IAM statement says why it exists.\n")
    return header + "\n".join(lines) + "\n"


def _link_tree(src: Path, dst: Path) -> None:
    """Copy `src` to `dst` with hard links where possible (the layers are hundreds of MB)."""
    shutil.rmtree(dst, ignore_errors=True)

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)
    shutil.copytree(src, dst, copy_function=link, ignore=shutil.ignore_patterns(".stamp"))


def _stage_layers(out: Path, built: dict[str, Path]) -> None:
    for name, path in built.items():
        if name != "image":
            _link_tree(path, out / "layers" / name)


def _stage_image(out: Path, image_layer: Path) -> None:
    """DIR/image/: the media image's build context (Dockerfile, app package, layer, models)."""
    ctx = out / "image"
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir()
    shutil.copy2(DOCKERFILE, ctx / "Dockerfile")
    with zipfile.ZipFile(out / "deployment.zip") as zf:
        zf.extractall(ctx / "app")
    _link_tree(image_layer / "python", ctx / "layer" / "python")
    _link_tree(image_layer / "models", ctx / "layer" / "models")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = package(args.stage, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
