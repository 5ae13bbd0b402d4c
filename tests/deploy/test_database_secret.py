"""DATABASE_SECRET_ARN: the functions build their DSN from an RDS-format secret, read once per container.

Against the stack's own Secrets Manager (the emulator) and Postgres. The
secret's role signs in with a password (scram-sha-256 for that role only), so
a connection proves the secret's password was used, not the local trust rule.
"""
from __future__ import annotations

import json
import uuid

import psycopg2
import pytest
from psycopg2 import sql


@pytest.fixture()
def password_role(stack):
    """A login role that must give its password over TCP; (name, password, port, dbname)."""
    admin = psycopg2.connect(stack.env["DATABASE_URL"])
    admin.autocommit = True
    name, password = f"secret_user_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(name)), (password,))
        cur.execute("SHOW hba_file")
        hba_path = cur.fetchone()[0]
        cur.execute("SELECT current_database()")
        dbname = cur.fetchone()[0]
    with open(hba_path) as f:
        original = f.read()
    with open(hba_path, "w") as f:   # first match wins: this line goes before the trust rules
        f.write(f"host all {name} 127.0.0.1/32 scram-sha-256\n{original}")
    with admin.cursor() as cur:
        cur.execute("SELECT pg_reload_conf()")
    try:
        yield name, password, admin.info.port, dbname
    finally:
        with open(hba_path, "w") as f:
            f.write(original)
        with admin.cursor() as cur:
            cur.execute("SELECT pg_reload_conf()")
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        admin.close()


@pytest.fixture()
def secrets(stack):
    import boto3
    return boto3.client("secretsmanager", endpoint_url=stack.env["AWS_ENDPOINT_URL"])


@pytest.fixture()
def secret_settings(stack, monkeypatch):
    """Switch this process to DATABASE_SECRET_ARN (no DATABASE_URL); everything restored after."""
    from chalicelib import db
    from chalicelib.config import reset_settings

    def use(arn: str, params: str = "") -> None:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setenv("DATABASE_SECRET_ARN", arn)
        monkeypatch.setenv("DATABASE_PARAMS", params)
        reset_settings()
        db._secrets.cache_clear()
        db.close()

    yield use
    monkeypatch.undo()
    reset_settings()
    db._secrets.cache_clear()
    db._refetch_secret = False
    db.close()


def _rds_secret(role: tuple, **changes) -> str:
    name, password, port, dbname = role
    value = {"engine": "postgres", "username": name, "password": password, "host": "127.0.0.1",
             "port": port, "dbname": dbname}
    value.update(changes)
    return json.dumps(value)


def _who() -> dict:
    from chalicelib import db
    return db.fetch_one("SELECT current_user AS who, current_database() AS db")


def _count_secret_reads() -> list:
    from chalicelib import db
    reads: list = []
    db._secrets().client.meta.events.register("before-send.secrets-manager.GetSecretValue",
                                              lambda **kw: reads.append(1))
    return reads


def test_a_connection_made_through_the_secret_signs_in_as_its_user(password_role, secrets, secret_settings):
    from chalicelib import db

    # The secret names the writer endpoint; DATABASE_PARAMS sends the functions to "the proxy" instead.
    arn = secrets.create_secret(Name=f"clipstream/test/db-{uuid.uuid4().hex[:8]}",
                                SecretString=_rds_secret(password_role, host="127.0.0.2"))["ARN"]
    secret_settings(arn, "host=127.0.0.1 connect_timeout=5")
    reads = _count_secret_reads()
    assert _who() == {"who": password_role[0], "db": password_role[3]}
    db.close()                                  # a new connection in the same container ...
    assert _who()["who"] == password_role[0]
    assert len(reads) == 1                      # ... does not read the secret again

    secret_settings(arn)                        # without the override: the secret's own host
    with pytest.raises(db.DatabaseUnavailable):
        _who()


def test_a_wrong_password_fails_and_the_rotated_secret_is_read_again(password_role, secrets, secret_settings):
    from chalicelib import db

    arn = secrets.create_secret(Name=f"clipstream/test/db-{uuid.uuid4().hex[:8]}",
                                SecretString=_rds_secret(password_role, password="not-the-password"))["ARN"]
    secret_settings(arn)
    reads = _count_secret_reads()
    with pytest.raises(db.DatabaseUnavailable, match="password authentication failed"):
        _who()
    secrets.put_secret_value(SecretId=arn, SecretString=_rds_secret(password_role))   # rotation
    assert _who()["who"] == password_role[0]
    assert len(reads) == 2


def test_database_url_wins_over_the_secret(stack, password_role, secrets, secret_settings, monkeypatch):
    from chalicelib.config import reset_settings

    arn = secrets.create_secret(Name=f"clipstream/test/db-{uuid.uuid4().hex[:8]}",
                                SecretString=_rds_secret(password_role))["ARN"]
    secret_settings(arn)
    monkeypatch.setenv("DATABASE_URL", stack.env["DATABASE_URL"])
    reset_settings()
    assert _who()["who"] == "postgres"


@pytest.mark.parametrize("value, problem", [
    ("not json", "cannot read the database secret"),
    (json.dumps({"password": "x"}), "username and password"),
])
def test_an_unusable_secret_is_database_unavailable(stack, secrets, secret_settings, value, problem):
    from chalicelib import db

    arn = secrets.create_secret(Name=f"clipstream/test/db-{uuid.uuid4().hex[:8]}", SecretString=value)["ARN"]
    secret_settings(arn)
    with pytest.raises(db.DatabaseUnavailable, match=problem):
        _who()


def test_an_unknown_secret_is_database_unavailable(stack, secret_settings):
    from chalicelib import db

    secret_settings("arn:aws:secretsmanager:us-east-1:123456789012:secret:clipstream/none-AbCdEf")
    with pytest.raises(db.DatabaseUnavailable, match="cannot read the database secret"):
        _who()
