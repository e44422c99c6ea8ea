"""No credential in any output: credentials of every kind are planted in datastore connections
(``AIRFLOW_CONN_*``) and searched for in what mlpipe prints, raises, writes and hands to Airflow: error messages,
reprs and URIs, the pod spec and the Docker operator of a step, rendered template fields, and the run record,
log and UI data of a step run. (``mlpipe datastores list`` is searched in ``test_secrets.py``.)"""

from __future__ import annotations

import functools
import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.compute import (
    DockerCompute,
    Environment,
    KubernetesCompute,
    LocalCompute,
    RunConfiguration,
    StepLaunch,
)
from airflow_mlpipe.compute.docker import build_docker_operator
from airflow_mlpipe.compute.kubernetes import WORKLOAD_IDENTITY, build_pod_operator
from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.operators.lineage import dataset_name
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.snapshot import scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.config import DatastoreConfig
from airflow_mlpipe.storage.datastore import Datastore
from tests.security.test_secrets import (
    ACCOUNT_KEY,
    CONN_STRING,
    NESTED,
    S3_SECRET,
    SAS,
    SAS_SIG,
    URL_PASSWORD,
    leaks,
    plant,
    planted_connections,
)

SECRET = "mlpipe-datastores"


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The planted datastores' names; the default datastore is a local folder."""
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    return plant(monkeypatch)


def configs(names: list[str]) -> dict[str, DatastoreConfig]:
    return {name: Datastore.get(name).config for name in names}


def launch(names: list[str], **env: str) -> StepLaunch:
    return StepLaunch("train", ("-m", "airflow_mlpipe.runner", "--spec", "s/spec.json"), env, tuple(names))


def pod(names: list[str], **compute: Any) -> Any:
    compute.setdefault("datastore_secrets", SECRET)
    target = KubernetesCompute(image="team/ml:1", secrets=[SECRET], **compute)
    return build_pod_operator(target, task_id="train", launch=launch(names), datastores=configs(names))


def container(names: list[str], **compute: Any) -> Any:
    target = DockerCompute(image="team/ml:1", **compute)
    return build_docker_operator(target, task_id="train", launch=launch(names), datastores=configs(names))


# -- messages, reprs, URIs --------------------------------------------------------------------------------------
def _messages(name: str) -> list[str]:
    """What mlpipe says about datastore ``name``: reprs, URIs, lineage names, and the errors a misconfigured
    compute raises."""
    store = Datastore.get(name)
    said = [repr(store), repr(store.config), store.uri("data/x.csv"), store.url, str(store.config.public_options())]
    said.append(str(dataset_name(store, "data/x.csv")))  # the step's OpenLineage datasets
    failing: list[Callable[[], Any]] = [
        lambda: build_pod_operator(  # no Secret mapped for the datastore
            KubernetesCompute(image="team/ml:1"), task_id="t", launch=launch([name]), datastores=configs([name])
        ),
        lambda: build_pod_operator(  # workload identity for a connection that holds credentials
            KubernetesCompute(image="team/ml:1", service_account="sa", datastore_secrets={name: WORKLOAD_IDENTITY}),
            task_id="t",
            launch=launch([name]),
            datastores=configs([name]),
        ),
    ]
    for secret in [s for s in store.config.secret_values if len(s) >= 6]:  # a credential in a plain variable
        plain = {"DATA_URL": f"x{secret}x"}
        failing += [functools.partial(pod, [name], env=plain), functools.partial(container, [name], env=plain)]
    for call in failing:
        with pytest.raises(ConfigError) as info:
            call()
        said.append(str(info.value))
    return said


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in planted_connections()])
def test_messages_reprs_and_uris_show_no_credential(names: list[str], name: str) -> None:
    said = _messages(name)
    assert [leaks(text) for text in said] == [[] for _ in said]
    assert any(f"datastore {name!r}" in text for text in said)


# -- the pod spec and the Docker operator -----------------------------------------------------------------------
def pod_manifest(operator: Any) -> dict[str, Any]:
    from kubernetes.client import ApiClient

    manifest: dict[str, Any] = ApiClient().sanitize_for_serialization(operator.build_pod_request_obj(dry_run=True))
    return manifest


@pytest.mark.parametrize(
    "mapping",
    [
        pytest.param(SECRET, id="one-secret-env-from"),
        pytest.param("per-datastore", id="secret-key-ref-per-datastore"),
    ],
)
def test_the_pod_spec_holds_no_credential_and_gets_them_from_the_secret(names: list[str], mapping: str) -> None:
    datastore_secrets: Any = SECRET if mapping == SECRET else dict.fromkeys(names, SECRET)
    operator = pod(names, datastore_secrets=datastore_secrets, env={"HF_HUB_DISABLE_TOKEN": "1"})
    manifest = pod_manifest(operator)
    assert leaks(json.dumps(manifest)) == []
    (base,) = manifest["spec"]["containers"]
    plain = [e for e in base.get("env", []) if "value" in e]
    assert not [e for e in plain if e["name"].startswith("AIRFLOW_CONN_")]
    if mapping == SECRET:
        assert base["envFrom"] == [{"secretRef": {"name": SECRET}}]
    else:
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in base["env"] if "valueFrom" in e}
        assert refs == {
            f"AIRFLOW_CONN_{n.upper()}": {"name": SECRET, "key": f"AIRFLOW_CONN_{n.upper()}"} for n in names
        }


def test_the_docker_operator_shows_no_credential_and_hands_them_over_privately(names: list[str]) -> None:
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    operator = container(names, env={"MODE": "train"}, private_env={"HF_TOKEN": f"hf_{NESTED}"})
    shown = {
        "environment": operator.environment,
        "command": operator.command,
        "labels": operator.labels,
        "rendered": _serialize_rendered_fields(operator),
        "describe": DockerCompute(private_env={"HF_TOKEN": f"hf_{NESTED}"}).describe(),
        "repr": repr(DockerCompute(private_env={"HF_TOKEN": f"hf_{NESTED}"})),
    }
    assert leaks(json.dumps(shown, default=str)) == []
    private = operator._private_environment  # the provider's: merged into the container's env only at run time
    assert set(private) == {"HF_TOKEN", *(f"AIRFLOW_CONN_{n.upper()}" for n in names)}
    delivered = json.dumps(private)
    assert [s for s in (ACCOUNT_KEY, SAS_SIG, S3_SECRET, NESTED, URL_PASSWORD) if s not in delivered] == []


@pytest.mark.parametrize(
    ("build", "match"),
    [
        pytest.param(
            lambda n: pod(n, env={"HF_TOKEN": "hf_abcdefgh"}),
            r"environment sets 'HF_TOKEN' as a plain value.*KubernetesCompute\(secrets=\[Secret\('env', 'HF_TOKEN'",
            id="k8s-secret-named-env",
        ),
        pytest.param(
            lambda n: pod(
                n,
                full_pod_spec={"spec": {"containers": [{"name": "base", "env": [{"name": "API_KEY", "value": "k"}]}]}},
            ),
            "full_pod_spec sets 'API_KEY' as a plain value",
            id="k8s-full-pod-spec-env",
        ),
        pytest.param(
            lambda n: pod(n, env={"NOTE": NESTED}),
            "a credential of datastore 's3_nested' appears in the container's environment",
            id="k8s-datastore-credential-in-env",
        ),
        pytest.param(
            lambda n: build_pod_operator(
                KubernetesCompute(image="i:1", service_account="sa", datastore_secrets={"az_sas": WORKLOAD_IDENTITY}),
                task_id="t",
                launch=launch(["az_sas"]),
                datastores=configs(["az_sas"]),
            ),
            r"datastore 'az_sas' uses WORKLOAD_IDENTITY, but its connection holds credentials \(sas_token\)",
            id="k8s-workload-identity-with-credentials",
        ),
        pytest.param(
            lambda n: container(n, env={"AWS_SECRET_ACCESS_KEY": "abcdefgh"}),
            r"sets 'AWS_SECRET_ACCESS_KEY' as a plain value.*DockerCompute\(private_env=",
            id="docker-secret-named-env",
        ),
        pytest.param(
            lambda n: container(n, operator_kwargs={"extra_hosts": {"h": f"x{S3_SECRET}"}}),
            "a credential of datastore 's3_url' appears in the container's operator_kwargs",
            id="docker-datastore-credential-in-operator-kwargs",
        ),
    ],
)
def test_a_secret_in_a_plain_value_is_refused(names: list[str], build: Callable[[list[str]], Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        build(names)
    assert leaks(str(info.value)) == [] and "abcdefgh" not in str(info.value)


# -- rendered template fields -----------------------------------------------------------------------------------
def test_rendered_fields_of_a_step_show_no_credential(names: list[str], tmp_path: Path) -> None:
    from airflow.sdk import DAG
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    from airflow_mlpipe import Dataset, Environment, OutputFileDatasetConfig, PythonScriptOperator
    from airflow_mlpipe.hooks.datastore import DatastoreHook

    for name in names:  # what a task does when it resolves a datastore: its credentials join Airflow's masker
        DatastoreHook.get_datastore(name)
    with DAG("rendered_secrets", schedule=None):
        step = PythonScriptOperator(
            task_id="s",
            script_name="s.py",
            source_directory=str(tmp_path),
            arguments=[
                "--data",
                Dataset.File.from_files(path=(Datastore.get("s3_url"), "data/*.csv")).as_named_input("d"),
                "--out",
                OutputFileDatasetConfig(name="o", destination=("s3_nested", "out/{run-id}")),
            ],
            # Allowed on LocalCompute only (a container target refuses a secret-named plain variable). Airflow's
            # masker hides SAS_TOKEN by its name; SMTP_PASS and DB_URL it hides only as mlpipe registers them.
            environment=Environment(
                env_vars={
                    "SAS_TOKEN": "{{ params.sas }}",
                    "SMTP_PASS": "{{ params.smtp }}",
                    "DB_URL": "postgresql://ml:{{ params.pw }}@db/ml",
                    "DAY": "{{ ds }}",
                }
            ),
        )
    params = {"sas": SAS, "smtp": "SmtpPlantRtif1", "pw": "DbPwPlantRtif2"}
    step.render_template_fields({"ds": "2026-01-02", "params": params})
    rendered = json.dumps(_serialize_rendered_fields(step), default=str)
    assert leaks(rendered) == [] and "2026-01-02" in rendered
    assert "SmtpPlantRtif1" not in rendered and "DbPwPlantRtif2" not in rendered and '"DB_URL": "***"' in rendered


def test_rendered_fields_of_a_mapped_step_show_no_credential(tmp_path: Path) -> None:
    """Airflow renders a mapped task's fields without calling its ``render_template_fields``: checked all the same."""
    from unittest import mock

    from airflow.sdk import DAG
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    from airflow_mlpipe import Environment, PythonScriptOperator
    from airflow_mlpipe.exceptions import StepFailedError

    (tmp_path / "s.py").write_text("pass\n")
    with DAG("mapped_secrets", schedule=None, params={"smtp": "MappedSmtpPlant1", "pw": "MappedPwPlant2"}) as dag:
        mapped = PythonScriptOperator.partial(
            task_id="s",
            script_name="s.py",
            source_directory=str(tmp_path),
            environment=Environment(env_vars={"SMTP_PASS": "{{ params.smtp }}"}),
        ).expand(arguments=[["--lr", "0.1"], ["--password", "{{ params.pw }}"]])

    def render(index: int) -> Any:
        ti = mock.MagicMock(map_index=index, task=mapped)
        context: dict[str, Any] = {"ti": ti, "task": mapped, "dag": dag, "run_id": "r", "dag_run": mock.MagicMock()}
        mapped.render_template_fields(context)  # type: ignore[arg-type]
        return context["task"]

    rendered = json.dumps(_serialize_rendered_fields(render(0)))
    assert '"SMTP_PASS": "***"' in rendered and "MappedSmtpPlant1" not in rendered
    with pytest.raises(StepFailedError, match="step 's': argument 2 shows the value of option '--password'"):
        render(1)


# -- a step run: its record, log, UI data and CLI output --------------------------------------------------------
SCRIPT = textwrap.dedent(
    """
    import os, sys
    conns = {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW_CONN_")}
    print("connections:", conns)
    print("bare:", os.environ["PLANTED_BARE"])
    print("argv:", sys.argv[1:])
    sys.exit(3)
    """
)


def _run_page_html(page: dict[str, Any]) -> str:
    """The step run page as the plugin's app renders it (its templates, without starting the app)."""
    import jinja2

    from airflow_mlpipe.ui import urls

    folder = Path(urls.__file__).parent / "templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=True)
    env.globals["url"] = urls.app_path
    env.filters["tojson_attr"] = lambda v: json.dumps(v, default=str)
    html = env.get_template("run.html").render(run=page, title="Step run", statuses=(records.FAILED,))
    assert page["record"]["step_run_id"] in html and "connections:" in html
    return html


def test_a_step_run_writes_no_credential(
    names: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The runner as a pod runs it (in process): the step script prints its connections, a SAS URL and an S3 URL
    with user info, and fails; its echoed output (the pod's log), record, summaries, uploaded log, UI data and
    ``mlpipe runs show`` hold none."""
    import io

    import airflow_mlpipe.runner.execute as execute
    from airflow_mlpipe.ui import views
    from tests.reuse.reuse_helpers import mlpipe_in_process

    monkeypatch.setattr(execute, "install_signal_handlers", lambda process: None)
    echoed = io.BytesIO()  # what a pod's log (or the local task log) shows of the script's output
    monkeypatch.setattr(execute, "stdout_bytes", lambda: echoed)
    monkeypatch.setenv("PLANTED_BARE", f"{NESTED} {ACCOUNT_KEY}")
    source = tmp_path / "src"
    source.mkdir()
    (source / "leaky.py").write_text(SCRIPT)
    store = Datastore.get_default()
    tree = scan_source(str(source))
    store_snapshot(str(source), tree, store)
    spec = StepSpec(
        attempt=AttemptId("secrets_dag", "manual__1", "leaky"),
        script_name="leaky.py",
        snapshot=tree.digest,
        arguments=(
            {"t": "str", "v": f"https://acct.blob.core.windows.net/c/x?{SAS}"},
            {"t": "str", "v": f"s3://AKID:{S3_SECRET}@bucket/p"},
        ),
        environment={"env_vars": {"MY_API_TOKEN": URL_PASSWORD, "PLAIN": CONN_STRING}},
        compute=DockerCompute(image="team/ml:1", private_env={"HF_TOKEN": NESTED}).describe(),
    )
    assert records.write_spec(spec, store)

    assert execute.run_step(records.spec_path(spec.step_run_id)) == 3

    said = capsys.readouterr().out + echoed.getvalue().decode()
    assert "[mlpipe] running leaky.py" in said and "connections:" in said and leaks(said) == []
    record = records.read_record(spec.step_run_id, store)
    assert record["status"] == records.FAILED and "connections:" in record["log_tail"]
    written = {
        path: store.read_bytes(path).decode()
        for path in store.list("_mlpipe", recursive=True)
        if not path.endswith("spec.json") and "/snapshots/" not in path
    }
    assert any(p.endswith("record.json") for p in written) and any("/logs/" in p for p in written)
    assert {p: leaks(text) for p, text in written.items() if leaks(text)} == {}
    page = views.step_run(store, spec.step_run_id)
    assert leaks(json.dumps(page, default=str)) == [] and leaks(_run_page_html(page)) == []
    code, shown = mlpipe_in_process("runs", "show", spec.step_run_id, "--json")
    assert code == 0 and spec.step_run_id in shown and leaks(shown) == []
    assert os.environ["PLANTED_BARE"]  # the process still has what it was given


def test_the_task_log_of_a_local_step_shows_no_credential(names: list[str]) -> None:
    """What a ``LocalCompute`` step prints reaches the task log scrubbed (Airflow's masker adds its own)."""
    import sys

    from airflow_mlpipe.compute.launch_local import LocalLauncher

    printed = StepLaunch("leaky", ("-c", SCRIPT), {"PLANTED_BARE": NESTED}, tuple(names))
    lines: list[str] = []
    assert LocalLauncher().run(sys.executable, printed, configs(names), lines.append) == 3
    log = "\n".join(lines)
    assert "connections:" in log and "bare: ***" in log and leaks(log) == []


def test_xcom_metrics_show_no_credential() -> None:
    from airflow_mlpipe.operators.attempt import summarize_metrics

    shown = summarize_metrics({"accuracy": 0.93, "source": f"https://acct.blob.core.windows.net/c/x?{SAS}"})
    assert shown["accuracy"] == 0.93 and leaks(json.dumps(shown)) == []


@pytest.mark.parametrize(
    ("make", "refused"),
    [
        pytest.param(lambda: KubernetesCompute(env={"WANDB_API_KEY": "0123abcd"}), "WANDB_API_KEY", id="k8s-env"),
        pytest.param(
            lambda: KubernetesCompute(
                operator_kwargs={"init_containers": [{"name": "init", "env": [{"name": "DB_PASSWORD", "value": "pw"}]}]}
            ),
            "DB_PASSWORD",
            id="k8s-init-container-env",
        ),
        pytest.param(
            lambda: DockerCompute(env={"aws_secret_access_key": "abcd"}), "aws_secret_access_key", id="docker"
        ),
        pytest.param(
            lambda: KubernetesCompute(env={"HF_HUB_DISABLE_TOKEN": "1", "TOKENIZERS_PARALLELISM": "false"}),
            None,
            id="switches-pass",
        ),
        pytest.param(
            lambda: DockerCompute(env={"MODE": "train"}, private_env={"HF_TOKEN": "hf_x"}),
            None,
            id="private-env-passes",
        ),
    ],
)
def test_secret_named_plain_variables_are_refused_when_the_dag_is_parsed(
    make: Callable[[], Any], refused: str | None
) -> None:
    if refused is None:
        make()
        return
    with pytest.raises(ConfigError, match=f"sets '{refused}' as a plain value"):
        make()


def _step(compute: Any, tmp_path: Path) -> Any:
    from airflow_mlpipe import PythonScriptOperator

    environment = Environment(env_vars={"HF_TOKEN": "{{ var.value.hf_token }}", "MODE": "train"})
    return PythonScriptOperator(
        task_id="s", script_name="s.py", source_directory=str(tmp_path), environment=environment, compute_target=compute
    )


@pytest.mark.parametrize(
    ("make", "refused"),
    [
        pytest.param(lambda p: _step(DockerCompute(image="i:1"), p), "Environment on docker", id="step-on-docker"),
        pytest.param(lambda p: _step(KubernetesCompute(image="i:1"), p), "Environment on kubernetes", id="step-on-k8s"),
        pytest.param(
            lambda p: RunConfiguration(
                environment=Environment(env_vars={"API_KEY": "k-123"}), target=KubernetesCompute(image="i:1")
            ),
            "Environment on kubernetes",
            id="run-configuration",
        ),
        pytest.param(lambda p: _step(LocalCompute(), p), None, id="local-step-passes"),
    ],
)
def test_secret_named_environment_variables_of_a_container_step_are_refused_at_parse_time(
    make: Callable[[Path], Any], refused: str | None, tmp_path: Path
) -> None:
    if refused is None:
        make(tmp_path)
        return
    with pytest.raises(ConfigError, match=f"{refused}: the container's environment sets '(HF_TOKEN|API_KEY)'"):
        make(tmp_path)


def test_a_containers_attempt_seal_key_travels_privately_to_docker_and_masked_in_a_pod(names: list[str]) -> None:
    """The key a container's runner seals its step run's records with: Docker's private environment; a pod's plain
    env (it seals that one step run only), registered with Airflow's masker; never where no registry key is set."""
    import dataclasses

    from airflow.sdk._shared.secrets_masker import redact

    from airflow_mlpipe.datasets.seal import ATTEMPT_KEY_ENV

    keyed = dataclasses.replace(launch(names), seal_key="attempt-key-0123456789abcdef")
    docker = build_docker_operator(
        DockerCompute(image="team/ml:1"), task_id="train", launch=keyed, datastores=configs(names)
    )
    assert docker._private_environment[ATTEMPT_KEY_ENV] == keyed.seal_key
    assert ATTEMPT_KEY_ENV not in (docker.environment or {})
    target = KubernetesCompute(image="team/ml:1", secrets=[SECRET], datastore_secrets=SECRET)
    operator = build_pod_operator(target, task_id="train", launch=keyed, datastores=configs(names))
    env = {e["name"]: e.get("value") for e in pod_manifest(operator)["spec"]["containers"][0]["env"]}
    assert env[ATTEMPT_KEY_ENV] == keyed.seal_key
    assert redact(f"pod env {keyed.seal_key}") == "pod env ***"
    assert "attempt-key" not in repr(keyed)
    plain = build_pod_operator(target, task_id="train", launch=launch(names), datastores=configs(names))
    assert ATTEMPT_KEY_ENV not in {e["name"] for e in pod_manifest(plain)["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize(("compute", "keyed"), [(DockerCompute(image="i:1"), True), (LocalCompute(), False)], ids=str)
def test_the_worker_derives_an_attempt_key_for_a_container_runner_only(
    compute: Any, keyed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from airflow_mlpipe.datasets.seal import SEAL_KEY_ENV, attempt_seal_key
    from airflow_mlpipe.operators.script_work import ScriptWork

    work = ScriptWork.__new__(ScriptWork)
    work.op = SimpleNamespace(  # type: ignore[assignment]
        task_id="train", compute_target=compute, environment=None, datastore_names=lambda i, o: ["mlpipe_default"]
    )
    spec = StepSpec(attempt=AttemptId("d", "r", "train"))
    assert work._launch(spec).seal_key is None  # no registry key: nothing is keyed
    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    assert work._launch(spec).seal_key == (attempt_seal_key(spec.step_run_id) if keyed else None)
