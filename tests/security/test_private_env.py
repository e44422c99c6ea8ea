"""Credentials never enter a step's spec: a ``LocalCompute`` variable that holds one is kept as a digest (its
value reaches only the runner's process, and a new value still computes anew); an argument that shows one is
refused before the spec is written; a container step's variable whose value holds one is refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.compute import DockerCompute, Environment, KubernetesCompute, LocalCompute
from airflow_mlpipe.compute.keyed import private_variables, step_environment
from airflow_mlpipe.core.secrets import argument_credential, is_private_digest, is_private_variable, private_digest
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.operators.script_work import check_no_plain_credentials
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.datastore import Datastore
from tests.airflow_utils import airflow_dags_test, last_run_rendered_fields, last_run_states, last_run_xcom

DAGS = Path(__file__).parent / "dags"
TOKEN_ONE, TOKEN_TWO, PASSWORD = "hf_planted_token_one", "hf_planted_token_two", "Planted-Pw-77"
# as in dags/private_env.py: credential names that Airflow's masker does not know
UNKNOWN_TO_AIRFLOW = ("SMTP_PASS", "GH_PAT", "DB_CREDS", "DB_PWD", "STORAGE_SAS", "API_AUTH", "SESSION_COOKIE")
UNKNOWN_TO_AIRFLOW += ("SIGNING_KEY", "AZ_ACCOUNTKEY")


@pytest.mark.parametrize(
    ("arguments", "found"),
    [
        (["--password", "hunter22"], (1, "the value of option '--password'")),
        (["--out", "x", "--api-key=abc123def"], (2, "the value of option '--api-key'")),
        (["--client-secret", "s3cr3t-value"], (1, "the value of option '--client-secret'")),
        (["s3://AKID:S3CRET@bucket/p"], (0, "a credential (a URL password, a signature or a key parameter)")),
        (["https://acct.blob.core.windows.net/c?sv=2024&sig=abcDEF"], (0, "a credential (a URL password, a sig")),
        (["DefaultEndpointsProtocol=https;AccountKey=abc=="], (0, "a credential (a URL password, a signature")),
        (["--conn", "x-the-datastore-key-x"], (1, "a datastore's credential")),
        # not credentials: numbers and switches after a credential option, another option, ordinary options
        (["--token", "5"], None),
        (["--password", "--verbose"], None),
        (["--key", "customer_id"], None),
        (["--lr", "0.1", "--mode", "train", "s3://bucket/data"], None),
        (["--token-limit", "abc"], None),
    ],
)
def test_arguments_that_show_a_credential_are_found(arguments: list[str], found: tuple[int, str] | None) -> None:
    result = argument_credential(arguments, known=["x-the-datastore-key-x"])
    if found is None:
        assert result is None
    else:
        assert result is not None and result[0] == found[0] and result[1].startswith(found[1])


@pytest.mark.parametrize(
    ("name", "value", "private"),
    [
        ("HF_TOKEN", "hf_abc", True),
        ("DB_URL", "postgresql://u:pw@h/db", True),
        ("STORAGE", "https://a.blob.core.windows.net/c?sig=xyz", True),
        ("ANYTHING", "has-the-datastore-key-inside", True),
        # names Airflow's masker does not know
        *((name, "Planted-value-1", True) for name in UNKNOWN_TO_AIRFLOW),
        ("HF_HUB_DISABLE_TOKEN", "1", False),
        ("MODE", "train", False),
        ("DB_URL", "postgresql://db.internal/ml", False),
    ],
)
def test_private_variables(name: str, value: str, private: bool) -> None:
    assert is_private_variable(name, value, ["the-datastore-key"]) is private


def test_a_local_environment_is_keyed_by_digests_of_its_credentials() -> None:
    env = Environment(env_vars={"HF_TOKEN": TOKEN_ONE, "MODE": "train"})
    keyed = step_environment(env, LocalCompute())["env_vars"]
    assert keyed["MODE"] == "train" and is_private_digest(keyed["HF_TOKEN"]) and TOKEN_ONE not in str(keyed)
    assert keyed["HF_TOKEN"] == private_digest("HF_TOKEN", TOKEN_ONE) != private_digest("HF_TOKEN", TOKEN_TWO)
    assert private_variables(env, LocalCompute()) == {"HF_TOKEN": TOKEN_ONE}
    assert private_variables(Environment(env_vars={"MODE": "x"}), DockerCompute(image="i:1")) == {}


@pytest.mark.parametrize("compute", [DockerCompute(image="i:1"), KubernetesCompute(image="i:1")], ids=str)
def test_a_container_variable_whose_value_holds_a_credential_is_refused(compute: Any) -> None:
    env = Environment(env_vars={"DB_URL": "postgresql://u:pw-123@h/db"})
    with pytest.raises(ConfigError, match=r"step 's': environment variable 'DB_URL' holds a credential") as caught:
        check_no_plain_credentials("s", compute, [], env, [])
    assert "pw-123" not in str(caught.value)
    check_no_plain_credentials("s", compute, [], Environment(env_vars={"DB_URL": "postgresql://h/db"}), [])


def test_a_local_step_gets_its_credentials_and_its_spec_holds_only_digests(
    airflow_db: Path, local_home: dict[str, str], default_store: Datastore
) -> None:
    env, store = local_home, default_store
    first = airflow_dags_test("security_private_env", dags_folder=DAGS, env=env)
    result = last_run_xcom("security_private_env", "use_token")
    srid = result["step_run_id"]
    spec_text = store.read_text(records.spec_path(srid))
    assert TOKEN_ONE not in spec_text
    assert PASSWORD not in spec_text
    spec = records.read_spec(srid, store)
    assert spec is not None
    env_vars = spec.environment["env_vars"]
    assert env_vars["MODE"] == "train"
    assert env_vars["HF_TOKEN"] == private_digest("HF_TOKEN", TOKEN_ONE)
    assert env_vars["DB_URL"] == private_digest("DB_URL", f"postgresql://ml:{PASSWORD}@db.internal/ml")
    # the script got the values themselves
    (out,) = records.read_record(srid, store)["outputs"]
    seen = dict(line.split() for line in store.read_text(out["path"] + "/seen.txt").splitlines())
    assert seen["HF_TOKEN"] == hashlib.sha256(TOKEN_ONE.encode()).hexdigest()
    assert seen["MODE"] == hashlib.sha256(b"train").hexdigest()
    # nothing mlpipe wrote or printed holds them (the script printed both)
    written = [store.read_text(p) for p in store.list("_mlpipe", recursive=True) if p.endswith((".json", ".txt"))]
    output = first.stdout + first.stderr
    assert "token seen:" in output
    assert not [w for w in [*written, output] if TOKEN_ONE in w or PASSWORD in w]
    # nor do the rendered fields Airflow stored (the Rendered Templates tab), names Airflow does not know included
    rendered = json.dumps(last_run_rendered_fields("security_private_env")["use_token"])
    planted = [TOKEN_ONE, PASSWORD, *(f"Planted-{name}-9" for name in UNKNOWN_TO_AIRFLOW)]
    assert '"MODE": "train"' in rendered and "SMTP_PASS" in rendered
    assert [p for p in planted if p in rendered] == [], rendered

    # the same token again: reused; another token: computed anew (the key holds the value's digest)
    airflow_dags_test("security_private_env", dags_folder=DAGS, env=env)
    again = last_run_xcom("security_private_env", "use_token")
    assert again["reused_from"] == srid
    airflow_dags_test("security_private_env", dags_folder=DAGS, env=env, conf={"token": TOKEN_TWO})
    other = last_run_xcom("security_private_env", "use_token")
    assert other["reused"] is False
    (out,) = records.read_record(other["step_run_id"], store)["outputs"]
    assert f"HF_TOKEN {hashlib.sha256(TOKEN_TWO.encode()).hexdigest()}" in store.read_text(out["path"] + "/seen.txt")


def test_an_argument_holding_a_password_is_refused_before_the_spec_is_written(
    airflow_db: Path, local_home: dict[str, str], default_store: Datastore
) -> None:
    proc = airflow_dags_test(
        "security_secret_argument", dags_folder=DAGS, env=local_home, conf={"pw": "Hunter-Pw-42"}, check=False
    )
    output = proc.stdout + proc.stderr
    failed = {"leaky_args": "failed", "leaky_container_env": "failed"}
    assert last_run_states("security_secret_argument")[1] == failed
    errors = [line for line in output.splitlines() if "[error" in line]
    (argument,) = [e for e in errors if "step 'leaky_args': argument 4 shows the value of option '--password'" in e]
    assert "Environment(env_vars={'NAME': ...}) on LocalCompute" in argument
    assert [e for e in errors if "step 'leaky_container_env': environment variable 'DB_URL' holds a credential" in e]
    assert not [p for p in default_store.list("_mlpipe/runs", recursive=True) if p.endswith("spec.json")]
    assert "Traceback" not in output
    # refused once rendered, before Airflow stores the rendered fields: the password is not in them
    assert "Hunter-Pw-42" not in json.dumps(last_run_rendered_fields("security_secret_argument"))


def test_a_runner_not_given_a_private_value_or_given_another_refuses_to_run() -> None:
    from airflow_mlpipe.core.attempt import AttemptId
    from airflow_mlpipe.runner.execute import StepError, _private_values
    from airflow_mlpipe.steps.spec import StepSpec

    digest = private_digest("HF_TOKEN", TOKEN_ONE)
    spec = StepSpec(attempt=AttemptId("d", "r", "t"), environment={"env_vars": {"HF_TOKEN": digest, "MODE": "x"}})
    assert _private_values(spec, {"HF_TOKEN": TOKEN_ONE, "MODE": "y"}) == {"HF_TOKEN": TOKEN_ONE}
    with pytest.raises(StepError, match="'HF_TOKEN' holds a credential.*this runner was not given it"):
        _private_values(spec, {})
    with pytest.raises(StepError, match="was given another value than the step's reuse key holds") as caught:
        _private_values(spec, {"HF_TOKEN": TOKEN_TWO})
    assert TOKEN_TWO not in str(caught.value) and TOKEN_ONE not in str(caught.value)


def test_the_worker_tells_airflows_masker_of_the_private_values() -> None:
    """Whatever else logs them in the task (a provider, a library) shows ``***``."""
    from types import SimpleNamespace

    from airflow.sdk._shared.secrets_masker import redact

    from airflow_mlpipe.core.attempt import AttemptId
    from airflow_mlpipe.operators.script_work import ScriptWork
    from airflow_mlpipe.steps.spec import StepSpec

    token = "hf_masked_in_task_log_42"
    work = ScriptWork.__new__(ScriptWork)
    work.op = SimpleNamespace(environment=Environment(env_vars={"HF_TOKEN": token, "MODE": "x"}))  # type: ignore[assignment]
    keyed = {"HF_TOKEN": private_digest("HF_TOKEN", token), "MODE": "x"}
    spec = StepSpec(attempt=AttemptId("d", "r", "t"), environment={"env_vars": keyed})
    assert work._private_env(spec) == {"HF_TOKEN": token}
    assert redact(f"a provider says {token}") == "a provider says ***"
