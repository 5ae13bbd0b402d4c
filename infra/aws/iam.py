"""Least-privilege roles: one per function, built from named grants with their reasons.

Every statement has a Sid; the template writer prints the statement's reason
as a comment above it (see `REASONS`). Resources are built from parameters
and names (never `Ref`/`GetAtt` of the bucket or the state machines) so a
role never depends on what depends on its function: the bucket's
notification depends on the trigger function, the state machine on the
pipeline functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib import storage

# Sid -> why the grant exists; the template carries it as a comment.
REASONS: dict[str, str] = {}

BUCKET_ARN = "arn:${AWS::Partition}:s3:::${MediaBucketName}"


def _sid(name: str, why: str) -> str:
    REASONS.setdefault(name, why)
    return name


def _sub(text: str) -> dict:
    return {"Fn::Sub": text}


def _camel(prefix: str) -> str:
    return "".join(p.capitalize() for p in prefix.strip("/").replace("_", "-").split("-"))


def log_group_arn(function_name: str) -> dict:
    return _sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/"
                + function_name + ":*")


def function_arn(function_name: str) -> dict:
    return _sub("arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:" + function_name)


def state_machine_arn(machine_name: str) -> dict:
    return _sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:" + machine_name)


def execution_arn(machine_name: str) -> dict:
    return _sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
                + machine_name + ":*")


# ------------------------------------------------------------------ grants

def logs(function_name: str) -> dict:
    return {"Sid": _sid("WriteOwnLogs", "the function writes only to its own log group, created by this template"),
            "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": log_group_arn(function_name)}


def xray() -> dict:
    return {"Sid": _sid("XRayTracing", "X-Ray has no resource-level permissions: AWS requires Resource *"),
            "Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            "Resource": "*"}


def vpc() -> dict:
    return {"Sid": _sid("VpcNetworkInterfaces",
                        "Lambda attaches the function to the database's VPC through network interfaces; "
                        "these EC2 actions do not support resource-level permissions, so AWS requires "
                        "Resource * (as in AWSLambdaVPCAccessExecutionRole)"),
            "Effect": "Allow",
            "Action": ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                       "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
                       "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
            "Resource": "*"}


def jwt_secret() -> dict:
    return {"Sid": _sid("ReadJwtKey", "signs and checks app tokens with the key kept in Secrets Manager"),
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
            "Resource": {"Ref": "JwtSecretArn"}}


def database_secret() -> dict:
    return {"Sid": _sid("ReadDatabaseCredentials", "builds its database connection from the RDS secret "
                        "at cold start (DATABASE_SECRET_ARN): the password is in no function setting"),
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
            "Resource": {"Ref": "DbSecretArn"}}


def _objects(prefixes: tuple[str, ...]) -> list[dict]:
    return [_sub(f"{BUCKET_ARN}/{p}*") for p in prefixes]


def s3_read(*prefixes: str, why: str) -> dict:
    return {"Sid": _sid("Read" + "".join(_camel(p) for p in prefixes), why),
            "Effect": "Allow", "Action": "s3:GetObject", "Resource": _objects(prefixes)}


def s3_write(*prefixes: str, why: str) -> dict:
    return {"Sid": _sid("Write" + "".join(_camel(p) for p in prefixes), why),
            "Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": _objects(prefixes)}


def s3_delete_video_objects() -> list[dict]:
    """Delete and list under the per-video prefixes (a deleted video leaves nothing behind)."""
    return [
        {"Sid": _sid("DeleteVideoObjects", "a deleted video's objects are removed under every prefix "
                     "of reference/001 (the API's delete, and steps that find their video deleted)"),
         "Effect": "Allow", "Action": "s3:DeleteObject", "Resource": _objects(storage.PREFIXES)},
        {"Sid": _sid("ListVideoPrefixes", "finds the objects to delete; listing is limited to the "
                     "per-video prefixes"),
         "Effect": "Allow", "Action": "s3:ListBucket", "Resource": _sub(BUCKET_ARN),
         "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in storage.PREFIXES]}}},
    ]


def s3_delete(*prefixes: str, why: str) -> list[dict]:
    """Delete under `prefixes`, and list only there to find what to delete."""
    name = "".join(_camel(p) for p in prefixes)
    return [{"Sid": _sid("Delete" + name, why), "Effect": "Allow", "Action": "s3:DeleteObject",
             "Resource": _objects(prefixes)},
            {"Sid": _sid("List" + name, "finds the objects to delete, listing only under their prefix"),
             "Effect": "Allow", "Action": "s3:ListBucket", "Resource": _sub(BUCKET_ARN),
             "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}}}]


def s3_list_bucket(sid: str, why: str) -> dict:
    return {"Sid": _sid(sid, why),
            "Effect": "Allow", "Action": "s3:ListBucket", "Resource": _sub(BUCKET_ARN)}


def start_execution(machine_name: str, why: str) -> dict:
    return {"Sid": _sid("Start" + _camel(machine_name.rsplit("-", 1)[-1]) + "Executions", why),
            "Effect": "Allow", "Action": "states:StartExecution",
            "Resource": state_machine_arn(machine_name)}


def stop_executions(machine_name: str) -> list[dict]:
    """StopExecution only: the running executions of a video are recorded in the database."""
    name = _camel(machine_name.rsplit("-", 1)[-1])
    return [
        {"Sid": _sid(f"Stop{name}Executions", "stops a deleted video's running executions (found in the "
                     "database), so no step writes after the delete"),
         "Effect": "Allow", "Action": "states:StopExecution", "Resource": execution_arn(machine_name)},
    ]


def watch_executions(machine_name: str) -> list[dict]:
    name = _camel(machine_name.rsplit("-", 1)[-1])
    return [
        {"Sid": _sid(f"Describe{name}Machine", "the console draws the machine and lists its executions"),
         "Effect": "Allow", "Action": ["states:DescribeStateMachine", "states:ListExecutions"],
         "Resource": state_machine_arn(machine_name)},
        {"Sid": _sid(f"Read{name}History", "the console shows each execution's states, attempts and errors"),
         "Effect": "Allow", "Action": ["states:DescribeExecution", "states:GetExecutionHistory"],
         "Resource": execution_arn(machine_name)},
    ]


def function_status(function_name: str, why: str) -> dict:
    return {"Sid": _sid("Read" + _camel(function_name.rsplit("-", 1)[-1]) + "Status", why),
            "Effect": "Allow", "Action": "lambda:GetFunctionConfiguration",
            "Resource": function_arn(function_name)}


def invoke(function_name: str, why: str) -> dict:
    return {"Sid": _sid("Invoke" + _camel(function_name.rsplit("-", 1)[-1]), why),
            "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function_arn(function_name)}


# ------------------------------------------------------------------ roles

@dataclass(frozen=True)
class Names:
    """Deployed names, as Chalice names them: <app>-<stage>-<name>."""
    app: str
    stage: str

    def function(self, name: str) -> str:
        return f"{self.app}-{self.stage}-{name}"

    def state_machine(self, stem: str) -> str:
        return f"{self.app}-{self.stage}-{stem}"


def lambda_role(function_name: str, statements: list[dict], *, in_vpc: bool = True) -> dict:
    """An execution role with the baseline plus `statements`.

    The baseline: its own logs and X-Ray; with `in_vpc` (the function uses the
    database) the VPC network interfaces and the database secret.
    """
    base = [logs(function_name), xray()] + ([vpc(), database_secret()] if in_vpc else [])
    sids = [s["Sid"] for s in base + statements]
    if len(sids) != len(set(sids)):
        raise ValueError(f"{function_name}: a grant is listed twice: {sorted(sids)}")
    return {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "least-privilege",
                      "PolicyDocument": {"Version": "2012-10-17", "Statement": base + statements}}],
    }}


def states_role(machine_name: str, function_names: list[str]) -> dict:
    """The state machine's role: invoke exactly the functions its definition names."""
    arns: list[Any] = []
    for name in function_names:
        arns += [function_arn(name), _sub(function_arn(name)["Fn::Sub"] + ":*")]
    statements = [
        {"Sid": _sid("InvokeStepFunctions", "runs the Lambda functions its states name (and their versions)"),
         "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arns},
        xray(),
        {"Sid": _sid("DeliverExecutionLogs", "CloudWatch Logs delivery for Step Functions does not support "
                     "resource-level permissions: AWS requires Resource *"),
         "Effect": "Allow",
         "Action": ["logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                    "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                    "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"],
         "Resource": "*"},
    ]
    return {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"},
            "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "invoke-steps",
                      "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}],
    }}
