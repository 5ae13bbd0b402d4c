"""The SAM template `make package` writes: lint, API split, handlers, settings, IAM, state machines."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.aws import functions as fns
from infra.aws import iam, routes, settings, statemachines
from tests.deploy.conftest import STAGE, functions, handler_of

ROOT = Path(__file__).resolve().parents[2]
APP_NAME = "clipstream"
# Resource "*" only where AWS offers nothing narrower (each says why in the template).
STAR_ALLOWED = {"XRayTracing", "VpcNetworkInterfaces", "DeliverExecutionLogs"}


@pytest.fixture(scope="module")
def chalice_app():
    import app
    return app.app


def _app_functions(chalice_app) -> dict[str, str]:
    """Chalice name -> handler of every non-API function the app declares."""
    out = {f.name: f.handler_string for f in chalice_app.pure_lambda_functions}
    out.update({s.name: s.handler_string for s in chalice_app.event_sources})
    from infra.local.deploy import WEBSOCKET_FUNCTIONS   # Chalice names these by route
    out.update({WEBSOCKET_FUNCTIONS[k]: h.handler_string for k, h in chalice_app.websocket_handlers.items()})
    return out


def _roles(template: dict) -> dict[str, list[dict]]:
    return {k: [s for p in r["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
            for k, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"}


# ------------------------------------------------------------------ lint and ASL

CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))


def test_cfn_lint_reports_no_errors(template_path):
    result = subprocess.run([CFN_LINT, str(template_path)], capture_output=True, text=True)
    # cfn-lint's exit code is a bit mask: 1 = it failed, 2 = errors, 4 = warnings, 8 = informational.
    assert result.returncode & 3 == 0, result.stdout + result.stderr
    assert result.returncode == 0, f"warnings:\n{result.stdout}"


def test_cfn_lint_catches_a_broken_template(template_path, tmp_path):
    """The lint step can fail: a timeout past Lambda's 900 s cap is an error."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(template_path.read_text().replace("Timeout: 900", "Timeout: 9000", 1))
    result = subprocess.run([CFN_LINT, str(bad)], capture_output=True, text=True)
    assert result.returncode & 3 == 2 and "E3034" in result.stdout, result.stdout + result.stderr


def test_deployed_state_machines_are_valid_asl(template, tmp_path):
    """Each machine as AWS will run it (placeholders substituted) passes asl-validator."""
    validator = ROOT / "tests" / "tools" / "node_modules" / ".bin" / "asl-validator"
    machines = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert {m["Properties"]["StateMachineName"] for m in machines} == \
        {f"{APP_NAME}-{STAGE}-{stem}" for stem in statemachines.machines()}
    for machine in machines:
        text = json.dumps(machine["Properties"]["Definition"])
        for name in machine["Properties"]["DefinitionSubstitutions"]:
            text = text.replace("${%s}" % name, f"arn:aws:lambda:us-east-1:123456789012:function:{name}")
        assert "${" not in text
        path = tmp_path / f"{machine['Properties']['StateMachineName']}.json"
        path.write_text(text)
        result = subprocess.run([str(validator), "--json-path", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ the API split

def test_every_route_is_served_by_its_groups_function(template, chalice_app):
    resources = template["Resources"]
    paths = resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert "APIHandler" not in json.dumps(template)
    served = 0
    for path, methods in chalice_app.routes.items():
        group = routes.group_of(path)
        matching = [g for g in routes.ROUTE_GROUPS[:-1] if any(re.search(p, path) for p in g.patterns)]
        assert matching[0] == group or group.name == "core", path      # first rule decides
        for method in methods:
            uri = paths[path][method.lower()]["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            logical = re.search(r"\$\{(\w+)\.Arn\}", uri).group(1)
            props = resources[logical]["Properties"]
            assert props["FunctionName"] == f"{APP_NAME}-{STAGE}-api_{group.name}", (method, path)
            assert props["Handler"] == "app.app"
            served += 1
    assert served == sum(len(m) for m in chalice_app.routes.values())


def test_each_group_has_its_own_function_role_sizing_and_permission(template, chalice_app):
    resources = template["Resources"]
    groups = routes.groups_for(chalice_app.routes)
    specs = {g.name: g for g in routes.ROUTE_GROUPS}
    api = {k: p for k, p in functions(template).items() if p.get("Handler") == "app.app"}
    assert sorted(p["FunctionName"].rsplit("api_", 1)[1] for p in api.values()) == sorted(groups)
    roles = set()
    for logical, props in api.items():
        spec = specs[props["FunctionName"].rsplit("api_", 1)[1]]
        assert (props["MemorySize"], props["Timeout"]) == (spec.memory, spec.timeout)
        roles.add(props["Role"]["Fn::GetAtt"][0])
        permission = resources[f"{logical}InvokePermission"]["Properties"]
        assert permission["FunctionName"] == {"Ref": logical}
        assert permission["Principal"] == "apigateway.amazonaws.com"
    assert len(roles) == len(api)


def test_route_rules_are_tried_in_order():
    assert routes.group_of("/videos/{video_id}/stream").name == "media"
    assert routes.group_of("/videos/{video_id}/processing").name == "processing"
    assert routes.group_of("/videos/{video_id}").name == "videos"
    assert routes.group_of("/streams/{stream_id}/videos").name == "videos"
    assert routes.group_of("/streams/{stream_id}/members").name == "streams"
    assert routes.group_of("/something/new").name == "core"


# ------------------------------------------------------------------ handlers and settings

def test_every_function_of_the_app_is_deployed_with_its_handler(template, chalice_app):
    import app as app_module

    deployed = {p["FunctionName"]: handler_of(p) for p in functions(template).values()}
    for name, handler in _app_functions(chalice_app).items():
        assert deployed.pop(f"{APP_NAME}-{STAGE}-{name}") == handler, name
    for name, handler in deployed.items():          # what is left is the API
        assert name.startswith(f"{APP_NAME}-{STAGE}-api_") and handler == "app.app", name
    for handler in {handler_of(p) for p in functions(template).values()}:
        module, attr = handler.split(".")
        assert module == "app" and callable(getattr(app_module, attr)), handler


def test_every_setting_the_code_reads_is_decided(template):
    envs = [p["Environment"]["Variables"] for p in functions(template).values()]
    every = set.intersection(*(set(e) for e in envs))
    per_function = {k for spec in fns.PIPELINE_FUNCTIONS.values() for k in spec.environment}
    undecided = {name: sorted(files) for name, files in settings.code_reads().items()
                 if name not in every | per_function | set(settings.LEFT_UNSET)}
    assert not undecided, f"set these in infra/aws/settings.py or say why not: {undecided}"
    assert set(settings.global_environment(APP_NAME, STAGE)) <= every
    assert {"STAGE", "APP_NAME", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"} <= every


def test_per_function_settings_reach_exactly_those_functions(template):
    by_name = {p["FunctionName"]: p for p in functions(template).values()}
    for name, spec in fns.PIPELINE_FUNCTIONS.items():
        env = by_name[f"{APP_NAME}-{STAGE}-{name}"]["Environment"]["Variables"]
        for key, value in spec.environment.items():
            assert env[key] == value, name
    embed_users = {n for n, s in fns.PIPELINE_FUNCTIONS.items() if "EMBED_MODEL_PATH" in s.environment}
    assert embed_users == {"pipeline_embed", "embed_query"}
    for props in functions(template).values():
        if props["Environment"]["Variables"].get("EMBED_MODEL_PATH"):
            assert props["FunctionName"].rsplit("-", 1)[1] in embed_users


def test_the_search_route_invokes_the_deployed_embed_query(template, monkeypatch):
    from chalicelib.api import search
    from chalicelib.config import reset_settings

    monkeypatch.setenv("STAGE", STAGE)
    reset_settings()
    try:
        name = search.embed_query_function()
    finally:
        monkeypatch.undo()
        reset_settings()
    assert name in {p["FunctionName"] for p in functions(template).values()}
    role = _roles(template)["ApiSearchRole"]
    invoke = [s for s in role if s["Action"] == "lambda:InvokeFunction"]
    assert invoke and invoke[0]["Resource"]["Fn::Sub"].endswith(f":function:{name}")


def test_state_machine_arns_in_the_environment_name_the_machines(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    for stem in statemachines.machines():
        assert env[statemachines.env_name(stem)]["Fn::Sub"].endswith(f":stateMachine:{APP_NAME}-{STAGE}-{stem}")
    assert "STATE_MACHINE_ARN" in env and "CLIPS_STATE_MACHINE_ARN" in env


def test_database_credentials_come_from_the_secret_at_run_time(template, template_path):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["DATABASE_SECRET_ARN"] == {"Ref": "DbSecretArn"}
    params = env["DATABASE_PARAMS"]["Fn::Sub"]
    assert "host=${DbProxyEndpoint}" in params and "sslmode=require" in params
    assert "password" not in params and "user" not in params
    assert "DATABASE_URL" not in json.dumps(template) and "resolve:secretsmanager" not in template_path.read_text()
    # Exactly the functions that use the database may read the secret, and only that secret.
    roles = _roles(template)
    for props in functions(template).values():
        statements = roles[props["Role"]["Fn::GetAtt"][0]]
        reads = [s["Resource"] for s in statements if s["Action"] == "secretsmanager:GetSecretValue"]
        uses_database = "VpcConfig" in props
        assert ({"Ref": "DbSecretArn"} in reads) == uses_database, props["FunctionName"]
        assert all(r in ({"Ref": "DbSecretArn"}, {"Ref": "JwtSecretArn"}) for r in reads), props["FunctionName"]
    assert not [p for p in functions(template).values()
                if p["FunctionName"].endswith("-embed_query") and "VpcConfig" in p]
    params = template["Parameters"]
    assert {"DbProxyEndpoint", "DbSecretArn", "JwtSecretArn", "GoogleClientIds", "MediaImageUri"} <= set(params)


def test_health_asks_about_exactly_the_deployed_transcode_function(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    transcode = next(p["FunctionName"] for p in functions(template).values()
                     if p["FunctionName"].endswith("-pipeline_transcode"))
    assert env["TRANSCODE_FUNCTION_NAME"] == transcode
    readers = {role: [s for s in statements if "lambda:GetFunctionConfiguration" in json.dumps(s["Action"])]
               for role, statements in _roles(template).items()}
    readers = {role: s for role, s in readers.items() if s}
    assert list(readers) == ["ApiSystemRole"]
    [statement] = readers["ApiSystemRole"]
    assert statement["Resource"]["Fn::Sub"].endswith(f":function:{transcode}")


# ------------------------------------------------------------------ state machines

def test_substitutions_match_the_placeholders_of_each_machine(template, chalice_app):
    resources = template["Resources"]
    by_logical = {k: p for k, p in functions(template).items()}
    app_functions = _app_functions(chalice_app)
    for stem, path in statemachines.machines().items():
        machine = next(r["Properties"] for r in resources.values()
                       if r["Type"] == "AWS::StepFunctions::StateMachine"
                       and r["Properties"]["StateMachineName"] == f"{APP_NAME}-{STAGE}-{stem}")
        subs = machine["DefinitionSubstitutions"]
        assert set(subs) == statemachines.placeholders(path), stem
        invoked = set()
        for placeholder, value in subs.items():
            if "Fn::GetAtt" not in value:
                continue
            props = by_logical[value["Fn::GetAtt"][0]]
            invoked.add(props["FunctionName"])
            assert handler_of(props) in app_functions.values(), placeholder
            # A Task may not give up before its Lambda does.
            for state in _task_states(machine["Definition"]):
                if state["Parameters"]["FunctionName"] == "${%s}" % placeholder:
                    assert state["TimeoutSeconds"] >= props["Timeout"], (stem, placeholder)
        role = resources[machine["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
        statement = role["Policies"][0]["PolicyDocument"]["Statement"][0]
        allowed = {r["Fn::Sub"].rsplit(":function:", 1)[1] for r in statement["Resource"]}
        assert allowed == invoked | {f"{n}:*" for n in invoked}, stem
        assert machine["TracingConfiguration"] == {"Enabled": True}


def _task_states(definition: dict):
    for state in definition["States"].values():
        if state["Type"] == "Task" and "FunctionName" in state.get("Parameters", {}):
            yield state
        for branch in state.get("Branches", []) + [state.get("ItemProcessor") or state.get("Iterator") or {}]:
            if branch:
                yield from _task_states(branch)


# ------------------------------------------------------------------ IAM

def test_no_star_resource_except_where_aws_requires_it(template):
    for role, statements in _roles(template).items():
        for s in statements:
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            if "*" in resources:
                assert s["Sid"] in STAR_ALLOWED, (role, s["Sid"])
            assert "*" not in json.dumps(s["Action"]).replace("s3:ObjectCreated:*", ""), (role, s["Sid"])


def test_each_statement_carries_its_reason_as_a_comment(template_path):
    lines = template_path.read_text().splitlines()
    sids = [(i, m.group(1)) for i, line in enumerate(lines) if (m := re.match(r"^\s*- Sid: (\w+)$", line))]
    assert sids
    for i, sid in sids:
        if sid in iam.REASONS:
            assert lines[i - 1].strip() == f"# {iam.REASONS[sid]}", sid
    assert {sid for _, sid in sids} - {"DenyInsecureTransport", "PublicReadThumbnailsAndHls"} <= set(iam.REASONS)


def test_functions_reach_only_their_keys(template):
    roles = _roles(template)

    def s3(role: str, action: str) -> set[str]:
        out = set()
        for s in roles[role]:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            if action in actions:
                for r in s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]:
                    out.add(r["Fn::Sub"].split("${MediaBucketName}", 1)[1])
        return out

    assert s3("ApiVideosRole", "s3:PutObject") == {"/raw-uploads/*", "/thumbnail-uploads/*"}
    # custom thumbnails: uploads stay out of thumbnails/ (public with PublicMediaRead) until re-encoded
    assert s3("ThumbnailCustomRole", "s3:GetObject") == {"/thumbnail-uploads/*", "/thumbnails/*"}   # + a retry
    assert s3("ThumbnailCustomRole", "s3:PutObject") == {"/thumbnails/*"}
    assert s3("PipelineTranscodeRole", "s3:PutObject") == {"/processed-videos/*", "/thumbnails/*"}
    assert s3("PipelineTranscribeRole", "s3:PutObject") == {"/transcripts/*"}
    assert s3("ApiAuthRole", "s3:GetObject") == set() and s3("ApiAuthRole", "s3:PutObject") == set()
    assert s3("EmbedQueryRole", "s3:GetObject") == set()
    starts = [s for s in roles["OnUploadRole"] if s["Action"] == "states:StartExecution"]
    assert starts[0]["Resource"]["Fn::Sub"].endswith(f":stateMachine:{APP_NAME}-{STAGE}-pipeline")
    for role in ("ApiAuthRole", "ApiSocialRole", "PipelineEmbedRole"):
        assert not any("states:" in json.dumps(s["Action"]) for s in roles[role]), role


# ------------------------------------------------------------------ bucket, tracing, logs, sizing

def test_bucket_notification_cors_lifecycle_and_public_read(template):
    res = template["Resources"]
    event = res["OnUpload"]["Properties"]["Events"]["Upload"]
    assert event["Properties"]["Bucket"] == {"Ref": "MediaBucket"}
    assert event["Properties"]["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "raw-uploads/"}]
    bucket = res["MediaBucket"]["Properties"]
    assert {"PUT", "POST"} <= set(bucket["CorsConfiguration"]["CorsRules"][0]["AllowedMethods"])
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for r in rules)
    assert {"Id": "expire-unconfirmed-thumbnail-uploads", "Status": "Enabled", "Prefix": "thumbnail-uploads/",
            "ExpirationInDays": 1} in rules
    statements = res["MediaBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    public = [s["Fn::If"][1] for s in statements if "Fn::If" in s]
    assert [s["Action"] for s in public] == ["s3:GetObject"]
    assert sorted(r["Fn::Sub"].rsplit("/", 1)[0].split("}/")[1] for r in public[0]["Resource"]) == \
        ["processed-videos", "thumbnails"]
    assert template["Parameters"]["PublicMediaRead"]["Default"] == "false"


def test_tracing_and_structured_logs_are_on(template):
    res = template["Resources"]
    for logical, props in functions(template).items():
        assert props["Tracing"] == "Active", logical
        assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "clipstream"
        logs = res[f"{logical}Logs"]["Properties"]
        assert logs["LogGroupName"] == f"/aws/lambda/{props['FunctionName']}"
    assert res["RestAPI"]["Properties"]["TracingEnabled"] is True


def test_transcode_is_an_image_sized_for_a_two_gigabyte_ten_minute_upload(template):
    props = next(p for p in functions(template).values()
                 if p["FunctionName"].endswith("-pipeline_transcode"))
    assert props["PackageType"] == "Image" and props["ImageUri"] == {"Ref": "MediaImageUri"}
    assert props["ImageConfig"]["Command"] == ["app.pipeline_transcode"]
    assert props["EphemeralStorage"]["Size"] * 2**20 >= fns.transcode_scratch_bytes(600) * 1.25
    assert fns.transcode_scratch_bytes(600) > 2 * 1024**3 + 1024**3          # source + >1 GB of HLS
    assert props["MemorySize"] == 10240 and props["Timeout"] == 900
    assert "Runtime" not in props and "CodeUri" not in props


def test_api_functions_carry_no_layer_and_the_embed_functions_the_embed_layer(template):
    for props in functions(template).values():
        name = props["FunctionName"].split(f"{STAGE}-", 1)[1]
        if props.get("Handler") == "app.app":
            assert "Layers" not in props and props.get("PackageType") != "Image", name
        elif name in ("embed_query", "pipeline_embed"):
            assert props["Layers"] == [{"Ref": "EmbedLayer"}] and props["Runtime"] == "python3.12", name


def test_dockerfile_is_the_lambda_base_image_with_the_app_and_ffmpeg(chalice_app):
    text = (ROOT / "layers" / "transcode" / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert instructions[0] == "FROM public.ecr.aws/lambda/python:3.12"
    copies = {line.split()[1].rstrip("/") for line in instructions if line.startswith("COPY")}
    assert copies == {"app", "layer/python", "layer/models"}   # what package.py stages in image/
    cmd = json.loads(next(line for line in instructions if line.startswith("CMD"))[4:])
    assert cmd == ["app.pipeline_transcode"] and cmd[0] in _app_functions(chalice_app).values()
    assert "get_ffmpeg_exe" in text
