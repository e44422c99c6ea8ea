"""Credentials the scrubber recognises beyond names and URLs: authorization headers and bearer tokens, secret
options written as ``name=value`` text, and every ``MlpipeError`` message and compute/environment repr scrubbed
when made; what depends on it (workload identity, ``datastores list``, private variables)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_mlpipe import Dataset, DataTransferOperator, OutputFileDatasetConfig
from airflow_mlpipe.compute import Environment, KubernetesCompute
from airflow_mlpipe.compute.base import StepLaunch
from airflow_mlpipe.compute.kubernetes import WORKLOAD_IDENTITY, build_pod_operator
from airflow_mlpipe.core.secrets import (
    argument_credential,
    is_private_variable,
    scrub,
    scrub_file,
    scrub_text,
    secret_values,
)
from airflow_mlpipe.exceptions import ConfigError, MlpipeError
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.reuse.reuse_helpers import mlpipe_in_process

BEARER, OPTION = "LakeBearerPlantLLL", "SoStrPlant2"
PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\nMIIBIj\n-----END PUBLIC KEY-----"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Authorization: Bearer abcdefghijk123", "Authorization: *** ***"),
        ("Basic dXNlcjpwYXNzd29yZA==", "Basic ***"),
        ("aws_secret_access_key=SoStrPlant2", "aws_secret_access_key=***"),
        ("access_key=AKIA1234 client_secret=xyz", "access_key=*** client_secret=***"),
        ("Authorization=Bearer PlantQ6abcdef", "Authorization=*** ***"),
        ('aws_secret_access_key: X1234 and password="SoQPlant50"', 'aws_secret_access_key: *** and password="***"'),
        ("run --password hunter22 --lr 0.1", "run --password *** --lr 0.1"),
        ("https://ghp_abcdefghijklmnopqrstuv12@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("authorization: token ghp_abcdefghijklmnop", "authorization: *** ***"),
        ("[('secret', 'TupPlant1'), ('name', 'x')]", "[('secret', '***'), ('name', 'x')]"),
        ("aws_secret_access_key SoSpacePlant1 and more", "aws_secret_access_key *** and more"),
        ("s3://AKID:ab@cPlant@bucket/x", "s3://AKID:***@bucket/x"),
        # a PEM private key (a whole block, or one cut short), and a password shown as the repr of bytes
        (
            "-----BEGIN PRIVATE KEY-----\nMIIEvQPemPlant1\n-----END PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----",
        ),
        ("key: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbPemPlant2", "key: -----BEGIN OPENSSH PRIVATE KEY-----***"),
        ("{'user': b'ml', 'password': b'BytesPlant3'}", "{'user': b'ml', 'password': b'***'}"),
        ("password=b'BytesPlant4' token=b\"BytesPlant5\"", "password=b'***' token=b\"***\""),
        ("[('password', b'BytesPlant6')]", "[('password', b'***')]"),
        # not credentials: other keys, prose, ordinary options, a user name, mlpipe's own advice
        (
            "the secret key is wrong; see include_secret_files config/.env",
            "the secret key is wrong; see include_secret_files config/.env",
        ),
        ("https://user@host/x --token-limit 100", "https://user@host/x --token-limit 100"),
        ("write include_secret_files=['.env']", "write include_secret_files=['.env']"),
        ("sort_key=name key=customer_id", "sort_key=name key=customer_id"),
        ("basic auth is not used", "basic auth is not used"),
        ("x=1,y=2 --lr=0.1", "x=1,y=2 --lr=0.1"),
        (PUBLIC_KEY, PUBLIC_KEY),
        ("name=bob label='b'", "name=bob label='b'"),
    ],
)
def test_texts(text: str, shown: str) -> None:
    assert scrub_text(text) == shown


# Credentials known by their shape alone (built here from pieces: fakes of the real formats).
GH_TOKEN = "ghp_" + "A1b2C3d4E5" * 4
HF_TOKEN = "hf_" + "AbCdEfGh12" * 4
OPENAI_KEY = "sk-proj-" + "Ab1_Cd2-Ef3" * 5
SLACK_TOKEN = "xoxb-" + "1234567890-" * 2 + "AbCdEfGhIjKlMnOp"
SLACK_HOOK = "https://hooks.slack.com/services/T0000ABCD/B0000EFGH/" + "AbCdEfGh" * 3
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtbHBpcGUiLCJuIjoxfQ." + "Sig1_Sig2-Sig3" * 3


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"token {GH_TOKEN} used", "token *** used"),
        ("github_pat_11ABCDEFG0_" + "abcdefghij" * 5, "***"),
        (f"HF={HF_TOKEN}", "HF=***"),
        (f"--openai {OPENAI_KEY}", "--openai ***"),
        ("sk-" + "a1B2c3D4e5" * 5, "***"),
        (f"slack: {SLACK_TOKEN}", "slack: ***"),
        (f"post to {SLACK_HOOK} now", "post to https://hooks.slack.com/services/*** now"),
        ("glpat-" + "AbCdEfGhIj" * 2, "***"),
        ("key id AKIA" + "IOSFODNN7EXAMPLE.", "key id ***."),
        ("ASIA" + "ABCDEFGH23456765", "***"),
        (f"jwt={JWT}", "jwt=***"),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGPgpPlant1\n=ab12\n-----END PGP PRIVATE KEY BLOCK-----",
            "-----BEGIN PGP PRIVATE KEY BLOCK-----***-----END PGP PRIVATE KEY BLOCK-----",
        ),
        # ordinary words of the same beginnings stay
        ("pip install scikit-learn sk-learn; import sklearn", "pip install scikit-learn sk-learn; import sklearn"),
        ("sk-learn-compatible-estimators-for-all", "sk-learn-compatible-estimators-for-all"),
        ("from huggingface_hub import hf_hub_download", "from huggingface_hub import hf_hub_download"),
        ("AKIAPLAIN and ASIAN markets, task-scheduler-x", "AKIAPLAIN and ASIAN markets, task-scheduler-x"),
        ("ghp_short xoxb-1 glpat-x eyJhbGci.eyJ9.x", "ghp_short xoxb-1 glpat-x eyJhbGci.eyJ9.x"),
        ("https://hooks.slack.com/ is where hooks go", "https://hooks.slack.com/ is where hooks go"),
        # names of models, runs, tags and caches that begin as tokens do
        ("--model sk-gradient-boosting-v2-tuned",) * 2,
        ("models/sk-gradient-boosting-v2-tuned/run-1 /data/runs/sk-2024_01_01_experiment_run",) * 2,
        ("sk-" + "abcdef0123" * 4,) * 2,  # one case only: a digest, not a key
        ("xoxo-hugs-and-kisses-2024-long-string --tag=xapp-frontend-service-2024-v1",) * 2,
        ("ASIAPACIFIC2024SALES",) * 2,
        ("cache hf_" + "0123456789abcdef" * 2,) * 2,
        ("-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQEN\n-----END PGP PUBLIC KEY BLOCK-----",) * 2,
    ],
)
def test_token_shapes(text: str, shown: str) -> None:
    assert scrub_text(text) == shown


@pytest.mark.parametrize(
    ("name", "value", "what"),
    [
        ("HF", HF_TOKEN, "a Hugging Face token"),
        ("OPENAI", OPENAI_KEY, "an OpenAI key"),
        ("GH", GH_TOKEN, "a GitHub token"),
        ("SLACK_HOOK", SLACK_HOOK, "a Slack webhook URL"),
        ("SLACK", SLACK_TOKEN, "a Slack token"),
        ("ID", "AKIA" + "IOSFODNN7EXAMPLE", "an AWS access key id"),
        ("SESSION", JWT, "a JSON Web Token"),
    ],
)
def test_a_token_known_by_its_shape_is_private_and_refused_as_an_argument(name: str, value: str, what: str) -> None:
    """Whatever the variable or the option is called: a LocalCompute variable holding one is keyed and written as
    a digest, a container variable holding one is refused (the same rule), an argument showing one is refused."""
    from airflow_mlpipe.compute import LocalCompute
    from airflow_mlpipe.compute.keyed import step_environment

    assert is_private_variable(name, value)
    kept = step_environment(Environment(env_vars={name: value, "MODE": "train"}), LocalCompute())["env_vars"]
    assert kept[name].startswith("***sha256:") and kept["MODE"] == "train"
    assert argument_credential(["--lr", "0.1", f"--{name.lower()}", value]) == (3, what)
    assert argument_credential(["--lr", "0.1", f"--{name.lower()}={value}"]) == (2, what)
    found = list(secret_values(f"x {value} y"))
    assert found and all(secret in value for secret in found)


@pytest.mark.parametrize(
    "value",
    [
        "scikit-learn",
        "sk-learn",
        "hf_hub_download",
        "AKIAPLAIN",
        "xoxb-team",
        "sk-gradient-boosting-v2-tuned",
        "xapp-frontend-service-2024-v1",
        "ASIAPACIFIC2024SALES",
    ],
)
def test_ordinary_words_are_not_tokens(value: str) -> None:
    assert not is_private_variable("PACKAGE", value) and argument_credential(["--package", value]) is None


def test_a_log_file_loses_the_lines_of_a_pgp_private_key(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text(
        "start\n-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGPgp1\n=ab12\n-----END PGP PRIVATE KEY BLOCK-----\nend\n"
    )
    scrub_file(str(log), str(tmp_path / "shown.txt"))
    assert (tmp_path / "shown.txt").read_text() == (
        "start\n-----BEGIN PGP PRIVATE KEY BLOCK-----\n***\n***\n***\n***-----END PGP PRIVATE KEY BLOCK-----\nend\n"
    )


def test_a_log_file_loses_the_lines_of_a_private_key(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEPemLine1\nPemLine2==\n-----END RSA PRIVATE KEY-----"
    log.write_text(f"start\n{key}\nend\n")
    scrub_file(str(log), str(tmp_path / "shown.txt"))
    assert (tmp_path / "shown.txt").read_text() == (
        "start\n-----BEGIN RSA PRIVATE KEY-----\n***\n***\n***-----END RSA PRIVATE KEY-----\nend\n"
    )


def test_the_task_log_echo_loses_the_lines_of_a_private_key(tmp_path: Path) -> None:
    """What a script prints reaches the task (or pod) log line by line as it comes: a key printed across lines is
    masked whole there too, while the runner's own log keeps the script's bytes."""
    import io
    import os
    import sys

    from airflow_mlpipe.runner.process import ScriptProcess

    key = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEPemLine1\\nPemLine2==\\n-----END RSA PRIVATE KEY-----"
    script = f"import sys; print('start'); print('{key}'); print('end', flush=True)"
    log, echo = io.BytesIO(), io.BytesIO()
    code = ScriptProcess().run([sys.executable, "-c", script], cwd=str(tmp_path), env=os.environ, log=log, echo=echo)
    assert code == 0
    assert echo.getvalue().decode() == (
        "start\n-----BEGIN RSA PRIVATE KEY-----\n***\n***\n***-----END RSA PRIVATE KEY-----\nend\n"
    )
    assert b"PemLine2==" in log.getvalue()


def test_options_and_arguments() -> None:
    headers = {"client_kwargs": {"headers": {"Authorization": f"Bearer {BEARER}"}}}
    assert BEARER not in json.dumps(scrub(headers))
    assert list(secret_values({"client_kwargs": f"aws_secret_access_key={OPTION}"})) == [OPTION]
    assert BEARER in list(secret_values(headers))
    assert is_private_variable("MY_AUTH", f"Bearer {BEARER}") and is_private_variable("AUTHORIZATION", "x-token-1")
    assert argument_credential(["--key=customer_id", "--sort_key", "name"]) is None
    assert scrub({"client_assertion": "jwt-x", "auth": "secret-y"}) == {"client_assertion": "***", "auth": "***"}


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch) -> Datastore:
    extra = {
        "url": "s3://bucket/prefix",
        "client_kwargs": {"headers": {"Authorization": f"Bearer {BEARER}"}, "endpoint_url": "http://127.0.0.1:9"},
        "config_kwargs": f"aws_secret_access_key={OPTION}",
    }
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()
    return Datastore.get("lake")


def test_datastores_list_hides_a_bearer_token_and_an_option_string(lake: Datastore) -> None:
    for args in (("datastores", "list"), ("datastores", "list", "--json")):
        code, shown = mlpipe_in_process(*args)
        assert code == 0 and "lake" in shown and BEARER not in shown and OPTION not in shown, shown


def test_workload_identity_is_refused_for_a_connection_with_a_bearer_token(lake: Datastore) -> None:
    target = KubernetesCompute(image="i:1", service_account="ml", datastore_secrets={"lake": WORKLOAD_IDENTITY})
    launch = StepLaunch("train", ("-m", "airflow_mlpipe.runner"), {}, ("lake",))
    with pytest.raises(ConfigError, match="uses WORKLOAD_IDENTITY, but its connection holds credentials") as caught:
        build_pod_operator(target, task_id="train", launch=launch, datastores={"lake": lake.config})
    assert BEARER not in str(caught.value)


@pytest.mark.parametrize(
    ("make", "planted"),
    [
        (lambda: Dataset.File.from_files("s3://AKID:FilesUrlPlant1@bucket/x"), "FilesUrlPlant1"),
        (lambda: Dataset.File.from_files("https://acct.blob.core.windows.net/c/x?sv=1&sig=FilesSigPlant2"), "Plant2"),
        (
            lambda: DataTransferOperator(
                task_id="t", source_data_reference="s3://AKID:TrPlant8@b/p", destination_data_reference="x"
            ),
            "TrPlant8",
        ),
        (lambda: Environment(pip_packages=["pkg @ https://user:PipPlant14@pypi.example/p.whl"]), "PipPlant14"),
        (lambda: OutputFileDatasetConfig("o", ("s3://AKID:OutPlant4@b/p", "x/{run-id}")), "OutPlant4"),
    ],
)
def test_errors_never_echo_a_credential(make: Callable[[], object], planted: str) -> None:
    with pytest.raises((MlpipeError, ValueError)) as caught:
        make()
    assert planted not in str(caught.value) and "***" in str(caught.value)


def test_reprs_never_show_a_credential() -> None:
    k8s = KubernetesCompute(image="i:1", env={"DB_URL": "postgresql://u:K8sPlant12@h/db"})
    env = Environment(env_vars={"DB_URL": "postgresql://u:EnvPlant13@h/db"})
    assert "K8sPlant12" not in repr(k8s) and "EnvPlant13" not in repr(env) and "u:***@h" in repr(env)
    assert "hunter22" not in str(MlpipeError("connect with password=hunter22"))


def test_more_shapes_of_options_and_a_token_in_a_pip_url() -> None:
    assert "CookiePlant35" not in json.dumps(scrub({"headers": {"Cookie": "AWSALB=CookiePlant35"}}))
    with pytest.raises(ConfigError, match="holds a credential in its URL") as caught:
        Environment(pip_packages=["pkg @ git+https://ghp_GitTokPlant21abcdefghij@github.com/o/r.git"])
    assert "GitTokPlant21" not in str(caught.value)


@pytest.mark.parametrize("name", ["kubeconfig", ".dockercfg", ".htpasswd", "client_secret_1.json", "token.json"])
def test_more_secret_file_names(name: str) -> None:
    from airflow_mlpipe.fingerprint.secret_files import is_secret_file_name

    assert is_secret_file_name(name) and not is_secret_file_name("tokenizer.json")


def test_an_s3_secret_holding_a_slash_is_a_credential_never_a_bucket() -> None:
    from airflow_mlpipe.core.urls import parse_datastore_url

    url = "s3://AKIAEXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY@bucket/prefix"
    parsed = parse_datastore_url(url, datastore="s3x")
    assert parsed.root == "bucket/prefix"
    assert dict(parsed.url_options) == {"key": "AKIAEXAMPLE", "secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
    assert scrub_text(url) == "s3://AKIAEXAMPLE:***@bucket/prefix"
    assert parse_datastore_url("s3://bucket/p/a@b.csv", datastore="x").root == "bucket/p/a@b.csv"


@pytest.mark.parametrize(
    "url", ["az://user:PwPlant1@container/p", "file://u:PwPlant1@localhost/tmp", "memory://u:PwPlant1@x"]
)
def test_a_password_in_a_url_that_takes_none_is_refused(url: str) -> None:
    from airflow_mlpipe.core.urls import parse_datastore_url

    with pytest.raises(ConfigError, match="holds a password, which .* urls do not take") as caught:
        parse_datastore_url(url, datastore="d")
    assert "PwPlant1" not in str(caught.value)


def test_a_dataset_description_and_tags_are_stored_and_shown_scrubbed(local_home: dict[str, str]) -> None:
    store = Datastore.get_default()
    store.write_text("data/a.csv", "a\n1\n")
    Dataset.File.from_files((store, "data/a.csv")).register(
        "tagged",
        description="from DefaultEndpointsProtocol=https;AccountName=a;AccountKey=DescKeyPlant1==",
        tags={"source_sas": "sv=1&sig=TagSigPlant2", "token": "TagTokenPlant3", "partition_key": "day", "n": "2"},
    )
    (record,) = [p for p in store.list("_mlpipe/registry/datasets/tagged") if p.endswith("/1.json")]
    shown = [store.read_text(record)]
    for args in (("datasets", "show", "tagged"), ("datasets", "show", "tagged", "--json"), ("datasets", "list")):
        code, printed = mlpipe_in_process(*args)
        assert code == 0, printed
        shown.append(printed)
    shown.append(mlpipe_in_process("datasets", "list", "--json")[1])
    assert [s for s in shown if "Plant" in s] == []
    stored = json.loads(shown[0])
    assert stored["description"] == "from DefaultEndpointsProtocol=https;AccountName=a;AccountKey=***"
    assert stored["tags"] == {"source_sas": "***", "token": "***", "partition_key": "day", "n": "2"}


def test_a_record_registered_before_scrubbing_is_shown_scrubbed(
    local_home: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record that older code stored with a credential in its description and tags: sealed as it is (it is
    served), and scrubbed wherever it is read and shown."""
    from airflow_mlpipe.datasets import registry

    store = Datastore.get_default()
    store.write_text("data/a.csv", "a\n1\n")
    with monkeypatch.context() as older:
        older.setattr(registry, "scrub_text", lambda text, *_: text)
        older.setattr(registry, "scrub_labels", lambda labels: dict(labels))
        Dataset.File.from_files((store, "data/a.csv")).register(
            "old_tagged", description="key AccountKey=OldDescPlant1==", tags={"token": "OldTagPlant2", "n": "2"}
        )
    (path,) = [p for p in store.list("_mlpipe/registry/datasets/old_tagged") if p.endswith("/1.json")]
    assert "OldDescPlant1" in store.read_text(path)  # as older code left it
    record = registry.DatasetRegistry().get("old_tagged")
    assert record.description == "key AccountKey=***" and record.tags == {"token": "***", "n": "2"}
    shown = [mlpipe_in_process(*args)[1] for args in (("datasets", "show", "old_tagged", "--json"),
                                                      ("datasets", "list", "--json"))]  # fmt: skip
    assert [s for s in shown if "Plant" in s] == [] and "old_tagged" in shown[1]


def test_a_rendered_dataset_description_is_stored_scrubbed() -> None:
    from airflow.sdk import DAG
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    from airflow_mlpipe import RegisterDatasetOperator

    with DAG("rendered_description", schedule=None):
        op = RegisterDatasetOperator(
            task_id="r",
            dataset=Dataset.File.from_files(("mlpipe_default", "data/*.csv")),
            name="d",
            description="copied with {{ params.sas }}",
        )
    op.render_template_fields({"params": {"sas": "https://a.blob.core.windows.net/c?sv=1&sig=DescSigPlant4"}})
    rendered = json.dumps(_serialize_rendered_fields(op))
    assert "DescSigPlant4" not in rendered and "sig=***" in rendered


def test_places_in_a_record_keep_names_that_look_like_tokens(local_home: dict[str, str]) -> None:
    """An output's path and URI in a step run record are what gc, lineage and readers take back from it: a folder
    named like a token stays (the registry and the reuse index keep it too), while a URL's user info or signature
    and known credentials are still masked."""
    from airflow_mlpipe.steps.records import scrub_record

    store = Datastore.get_default()
    folder = f"models/{GH_TOKEN}/run-1"
    record = {
        "outputs": [{"name": "m", "path": folder, "uri": store.uri(folder)}],
        "inputs": [{"name": "d", "uri": "https://acct.blob.core.windows.net/c/x?sv=1&sig=SigPlant9"}],
        "log_tail": f"wrote {GH_TOKEN}",
        "source": {"uri": "s3://AKIDX:SecretPlant8@bucket/p"},
    }
    shown = scrub_record(record, store)
    assert shown["outputs"] == record["outputs"]
    assert shown["inputs"][0]["uri"].endswith("sig=***") and shown["source"]["uri"] == "s3://AKIDX:***@bucket/p"
    assert shown["log_tail"] == "wrote ***"
