"""Credentials that hid from the scrubber and the spec checks: credential options with a prefix
(``--db-password``), variable names that hide the word (``PGPASSWORD``, ``GH_PAT``), texts in other shapes
(``key = value``, XML, JSON inside JSON, URL-encoded SAS), error messages that echoed a value, an option named
``creds`` in ``mlpipe datastores list``, and more secret files left out of snapshots. Both sides of each rule are
in the tables: what must stay readable (``--max-tokens 512``, ``TOKENIZERS_PARALLELISM``) as much as what not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_mlpipe import ParallelRunConfig, PythonScriptOperator
from airflow_mlpipe.compute import DockerCompute, Environment, KubernetesCompute, LocalCompute
from airflow_mlpipe.compute.keyed import step_environment
from airflow_mlpipe.core.secrets import (
    argument_credential,
    is_credential_option,
    is_private_digest,
    is_private_variable,
    is_secret_key,
    scrub,
    scrub_text,
)
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.fingerprint.secret_files import SecretFileFilter, is_secret_file
from airflow_mlpipe.operators.script_work import check_no_plain_credentials
from airflow_mlpipe.steps.snapshot import scan_source
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.reuse.reuse_helpers import mlpipe_in_process


# -- 1. command-line options: a credential option's name ENDS with a credential word --------------------------------
@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        (["--db-password", "DbPwPlant1"], "--db-password"),
        (["--hf-token=HfTokPlant2"], "--hf-token"),
        (["--aws-secret-access-key", "AwsPlant3"], "--aws-secret-access-key"),
        (["--api-token", "ApiTokPlant4"], "--api-token"),
        (["--github-token", "GhTokPlant5"], "--github-token"),
        (["--openai-api-key", "sk-OpenAiPlant6"], "--openai-api-key"),
        (["--storage-account-key", "AcctKeyPlant7=="], "--storage-account-key"),
        (["--db_password", "DbPwPlant8"], "--db_password"),
        (["--smtp-passwd", "PwPlant9"], "--smtp-passwd"),
        (["--gcp-credentials", "creds.json"], "--gcp-credentials"),
        (["--vault-creds", "CredsPlant10"], "--vault-creds"),
        (["--client-secret", "SecPlant11"], "--client-secret"),
        (["--private-key=KeyPlant12"], "--private-key"),
        (["--pgpassword", "PgPlant13"], "--pgpassword"),
        (["--azure-connection-string", "Conn14"], "--azure-connection-string"),
        # not credentials: a credential word elsewhere in the name, a plain or sort key, a special token, numbers
        (["--max-tokens", "512"], None),
        (["--num-tokens", "64", "--max-new-tokens=128"], None),
        (["--tokenizer", "bert-base-uncased"], None),
        (["--token-limit", "abc"], None),
        (["--pad-token", "[PAD]", "--eos-token", "</s>"], None),
        (["--key", "customer_id", "--sort-key", "name"], None),
        (["--password-file", "/run/secrets/pw"], None),
        (["--secret-name", "mlpipe-datastores"], None),
        (["--hf-token", "5"], None),
        (["--db-password", "--verbose"], None),
        (["--hf-token=false"], None),
    ],
)
def test_credential_options(arguments: list[str], option: str | None) -> None:
    found = argument_credential(arguments)
    if option is None:
        assert found is None
    else:
        assert found is not None and found[1] == f"the value of option {option!r}"
        assert is_credential_option(option)


# -- 2. environment variable names that hide the credential word ----------------------------------------------------
@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("PGPASSWORD", True),
        ("DBPASSWORD", True),
        ("MYSQL_PWD", True),
        ("SECRETKEY", True),
        ("HFTOKEN", True),
        ("GITHUBTOKEN", True),
        ("OPENAIAPIKEY", True),
        ("DB_PASS", True),
        ("SMTP_PASS", True),
        ("GH_PAT", True),
        ("VAULT_CREDS", True),
        ("creds", True),
        ("cred", True),
        ("HF_TOKEN", True),
        # not credentials: counts and settings of tokenizers, where secrets are kept, ordinary names
        ("TOKENIZERS_PARALLELISM", False),
        ("TOKENIZER_NAME", False),
        ("MAX_TOKENS", False),
        ("max_new_tokens", False),
        ("SECRETS_DIR", False),
        ("AIRFLOW__SECRETS__BACKEND", False),
        ("BYPASS_CACHE", False),
        ("COMPASS_URL", False),
        ("PATH", False),
        ("OLDPWD", False),
        ("MODE", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_key(name) is secret
    assert is_private_variable(name, "Plant-Value-15") is secret


HIDDEN = {"PGPASSWORD": "PgPlant16", "SMTP_PASS": "SmtpPlant17", "GH_PAT": "ghp_PatPlant18", "HFTOKEN": "hfPlant19"}


def test_hidden_names_take_the_private_path_on_local_compute() -> None:
    env = Environment(env_vars={**HIDDEN, "TOKENIZERS_PARALLELISM": "false", "MAX_TOKENS": "512"})
    keyed = step_environment(env, LocalCompute())["env_vars"]
    assert all(is_private_digest(keyed[name]) for name in HIDDEN)
    assert keyed["TOKENIZERS_PARALLELISM"] == "false" and keyed["MAX_TOKENS"] == "512"
    assert not [value for value in HIDDEN.values() if value in json.dumps(keyed) or value in repr(env)]


@pytest.mark.parametrize("name", sorted(HIDDEN))
@pytest.mark.parametrize(
    ("make", "fix"),
    [
        (lambda env: DockerCompute(image="i:1", env=env), "DockerCompute(private_env="),
        (lambda env: KubernetesCompute(image="i:1", env=env), "KubernetesCompute(secrets=[Secret('env'"),
        (
            lambda env: check_no_plain_credentials("s", DockerCompute(image="i:1"), [], Environment(env_vars=env), []),
            "DockerCompute(private_env=",
        ),
        (
            lambda env: check_no_plain_credentials(
                "s", KubernetesCompute(image="i:1"), [], Environment(env_vars=env), []
            ),
            "KubernetesCompute(secrets=[Secret('env'",
        ),
    ],
    ids=["docker-env", "k8s-env", "docker-environment", "k8s-environment"],
)
def test_containers_refuse_hidden_names_as_plain_values(name: str, make: Callable[..., object], fix: str) -> None:
    with pytest.raises(ConfigError, match=rf"'{name}'") as caught:
        make({name: HIDDEN[name]})
    assert HIDDEN[name] not in str(caught.value) and fix in str(caught.value)


# -- 4. the scrubber: each shape with a planted value, which must go, and the text around it, which must stay ------
@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("run --password=PwPlant20 --lr 0.1", "run --password=*** --lr 0.1"),
        ("run --db-password PwPlant21 --max-tokens 512", "run --db-password *** --max-tokens 512"),
        ("aws_secret_access_key = AwsPlant22\nregion = eu", "aws_secret_access_key = ***\nregion = eu"),
        ("AccountKey = AcctPlant23==", "AccountKey = ***"),
        ("export PGPASSWORD=PgPlant24; psql", "export PGPASSWORD=***; psql"),
        ("DB_PASS=PassPlant25 GH_PAT=ghp_PatPlant26", "DB_PASS=*** GH_PAT=***"),
        ('{"extra": "{\\"secret\\": \\"JsonPlant27\\"}"}', '{"extra": "{\\"secret\\": \\"***\\"}"}'),
        (
            '"extra": "{\\\\\\"password\\\\\\": \\\\\\"Json2Plant28\\\\\\"}"',
            '"extra": "{\\\\\\"password\\\\\\": \\\\\\"***\\\\\\"}"',
        ),
        ("storage_options ['secret','ListPlant29']", "storage_options ['secret','***']"),
        ("[('secret', 'TupPlant30'), ('name', 'x')]", "[('secret', '***'), ('name', 'x')]"),
        ("['--lr', '0.1', '--api-key', 'ArgPlant31']", "['--lr', '0.1', '--api-key', '***']"),
        ("<Password>XmlPlant32</Password><User>me</User>", "<Password>***</Password><User>me</User>"),
        ("<SecretAccessKey>XmlPlant33</SecretAccessKey>", "<SecretAccessKey>***</SecretAccessKey>"),
        (
            "u=https%3A%2F%2Fa.blob%2Fc%3Fsv%3D1%26sig%3DSasPlant34%253D%26se%3D2",
            "u=https%3A%2F%2Fa.blob%2Fc%3Fsv%3D1%26sig%3D***%26se%3D2",
        ),
        ("name\tsecret\nsecret\tTabPlant35\n", "name\tsecret\nsecret\t***\n"),
        # not credentials: a key that is an object's name, counts, tokenizer settings, special tokens, prose
        ("<Key>data/train.csv</Key>", "<Key>data/train.csv</Key>"),
        (
            "max_tokens = 512 TOKENIZERS_PARALLELISM=false first_pass=2",
            "max_tokens = 512 TOKENIZERS_PARALLELISM=false first_pass=2",
        ),
        ("--pad-token [PAD] --tokenizer bert --num-tokens 8", "--pad-token [PAD] --tokenizer bert --num-tokens 8"),
        ("['key', 'name']", "['key', '***']"),  # a pair whose name is a key is still hidden (its value may be one)
        ("[1, 'secret', 'x']", "[1, 'secret', 'x']"),
    ],
)
def test_scrubbed_texts(text: str, shown: str) -> None:
    assert scrub_text(text) == shown


# -- 3. error messages name the type and the variable, never the value ----------------------------------------------
@pytest.mark.parametrize(
    ("make", "planted", "message"),
    [
        (
            lambda: Environment(name="e", env_vars={"API_TOKEN": {"v": "TokPlant40"}}),
            "TokPlant40",
            "env_vars['API_TOKEN'] must be a string, not dict",
        ),
        (
            lambda: Environment(env_vars=[("HF_TOKEN", "TokPlant41")]),
            "TokPlant41",
            "env_vars must be a mapping of variable names to string values, not list",
        ),
        (
            lambda: DockerCompute(image="i:1", env={"MODE": ["TokPlant42"]}),
            "TokPlant42",
            "env['MODE'] must be a string, not list",
        ),
        (
            lambda: Datastore("x9", "s3://b/p", ["secret", "S3SecPlant43"]),  # type: ignore[arg-type]
            "S3SecPlant43",
            "storage_options must be a dict",
        ),
        (
            lambda: ParallelRunConfig(entry_script="s.py", environment_variables={"API_TOKEN": {"v": "TokPlant44"}}),
            "TokPlant44",
            "environment_variables (the value of 'API_TOKEN' is of type dict, not shown) must map strings to strings",
        ),
    ],
)
def test_errors_name_the_type_never_the_value(make: Callable[[], object], planted: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make()
    assert planted not in str(caught.value) and message in str(caught.value), str(caught.value)


# -- 5. an option named creds or cred in mlpipe datastores list -----------------------------------------------------
def test_datastores_list_hides_creds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    extra = {"url": tmp_path.as_uri(), "creds": "CREDSplanted10", "cred": "CREDplanted11", "max_tokens": 5}
    monkeypatch.setenv("AIRFLOW_CONN_CREDSLAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()
    try:
        for args in (("datastores", "list"), ("datastores", "list", "--json")):
            code, shown = mlpipe_in_process(*args)
            assert code == 0 and "credslake" in shown, shown
            assert "CREDSplanted10" not in shown and "CREDplanted11" not in shown, shown
        assert scrub({"creds": "CREDSplanted10"}) == {"creds": "***"}
    finally:
        resolve.clear_cache()


# -- 6. secret files left out of snapshots --------------------------------------------------------------------------
SECRET_FILES = [
    "prod.env",
    "conf/.env.local",
    ".envrc",
    "service_account.json",
    "service-account-prod.json",
    "application_default_credentials.json",
    "secret.json",
    "secrets.json",
    "credentials.csv",
    "credentials.yaml",
    "credentials.json",
    "credentials.ini",
    "credentials",
    ".vault-token",
    ".s3cfg",
    "putty.PPK",
    "key.json",
    "gcp-key.json",
    "sa_key.json",
    ".docker/config.json",
    "home/.docker/config.json",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    "kubeconfig",
    ".kube/config",
    "cert.p12",
    "cert.pfx",
    "release.keystore",
    "store.jks",
    # ML platforms, keys, cloud and tool credentials, infrastructure state
    "kaggle.json",
    ".kaggle/kaggle.json",
    ".huggingface/token",
    ".cache/huggingface/token",
    ".databrickscfg",
    "rsa_key.p8",
    "etc/ssh/ssh_host_ed25519_key",
    "secring.gpg",
    "passwords.kdbx",
    ".boto",
    ".my.cnf",
    "_netrc",
    ".passwd-s3fs",
    "rclone.conf",
    ".azure/msal_token_cache.json",
    ".azure/accessTokens.json",
    ".config/gcloud/credentials.db",
    ".config/gcloud/access_tokens.db",
    "infra/terraform.tfstate",
    "infra/terraform.tfstate.backup",
    "infra/prod.tfvars",
    "infra/secrets.auto.tfvars.json",
]
KEPT_FILES = [
    "train.py",
    "credentials.py",
    "credentials.md",
    "config.json",
    "docker/config.json",
    "kube/config",
    "tokenizer.json",
    "monkey.json",
    "environment.yml",
    "keys.py",
    "models/token",
    "etc/ssh/ssh_host_ed25519_key.pub",
    "infra/main.tf",
    "azure/accessTokens.md",
]


@pytest.mark.parametrize(("path", "secret"), [(p, True) for p in SECRET_FILES] + [(p, False) for p in KEPT_FILES])
def test_secret_files(path: str, secret: bool) -> None:
    assert is_secret_file(path) is secret


def test_a_snapshot_leaves_them_out_and_names_them(tmp_path: Path) -> None:
    for path in [*SECRET_FILES, *KEPT_FILES]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x\n")
    secret_files = SecretFileFilter(("secret.json",))
    tree = scan_source(str(tmp_path), secret_files)
    assert sorted(tree.entries) == sorted([*KEPT_FILES, "secret.json"])
    assert sorted(secret_files.skipped) == sorted(set(SECRET_FILES) - {"secret.json"})


@pytest.mark.parametrize("entry", ["../../etc/shadow", "conf/../../x", "~/.ssh/id_rsa", "C:/keys/a.pem", "a\\b.pem"])
def test_include_secret_files_outside_the_source_is_refused(entry: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="relative to source_directory and inside it"):
        PythonScriptOperator(
            task_id="train", script_name="t.py", source_directory=str(tmp_path), include_secret_files=[entry]
        )
