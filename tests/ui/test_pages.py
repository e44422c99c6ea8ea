"""The ML pages and their JSON through Airflow's API server app with the plugin: login and DAG permission,
listings newest first with filters and pages, a step run's metrics as charts and tables, reuse, files confined to
the step run's folders, datasets with lineage, and comparisons."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from airflow_mlpipe.steps import readers as lineage
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.ui import urls
from tests.ui.conftest import PNG, make_run

PAGES = (
    "/mlpipe/runs",
    "/mlpipe/api/runs",
    "/mlpipe/datasets",
    "/mlpipe/api/datasets",
    "/mlpipe/compare",
    "/mlpipe/tabs/dag?dag_id=ui_dag",
    "/mlpipe/tabs/dag-run?dag_id=ui_dag&run_id=run-1",
    "/mlpipe/tabs/task?dag_id=ui_dag&run_id=run-1&task_id=train",
)


def _run_url(step_run_id: str, suffix: str = "") -> str:
    return f"/mlpipe/runs/{quote(step_run_id, safe='')}{suffix}"


@pytest.fixture
def deny(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """DAG ids the signed-in user may not read (the auth manager says no)."""
    from airflow.api_fastapi.app import get_auth_manager

    denied: set[str] = set()
    manager = get_auth_manager()
    original = manager.is_authorized_dag

    def is_authorized_dag(*, method: str, details: Any = None, user: Any, **kwargs: Any) -> bool:
        if details is not None and details.id in denied:
            return False
        return bool(original(method=method, details=details, user=user, **kwargs))

    monkeypatch.setattr(manager, "is_authorized_dag", is_authorized_dag)
    yield denied


def test_every_page_and_endpoint_refuses_an_unauthenticated_request(anonymous: Any, store: Datastore) -> None:
    made = make_run(store)
    paths = [
        *PAGES,
        _run_url(made.step_run_id),
        f"/mlpipe/api/runs/{made.step_run_id}",
        _run_url(made.step_run_id, "/files/logs/try-1.txt"),
        _run_url(made.step_run_id, "/files/artifacts/images/roc.png"),
        "/mlpipe/datasets/ui_model",
        f"/mlpipe/compare?ids={made.step_run_id}&ids=x.y.z.t1.0",
    ]
    for path in paths:
        answer = anonymous.get(path, follow_redirects=False)
        assert answer.status_code == 401, (path, answer.status_code)
        assert "the whole log" not in answer.text and "0.93" not in answer.text
    # a forged token is refused too
    anonymous.cookies.set("_token", "not-a-token")
    assert anonymous.get("/mlpipe/api/runs").status_code in (401, 403)
    # a bearer token works as the session cookie does
    from tests.ui.conftest import token

    assert anonymous.get("/mlpipe/api/runs", headers={"Authorization": f"Bearer {token()}"}).status_code == 200


def test_step_runs_newest_first_with_filters_and_pages(client: Any, store: Datastore) -> None:
    made = [
        make_run(store, run_id=f"run-{n}", created_at=f"2026-11-0{n}T10:00:00.000+00:00", with_files=False)
        for n in range(1, 6)
    ]
    reused = make_run(
        store, run_id="run-6", created_at="2026-11-06T10:00:00.000+00:00", reused_from=made[0].step_run_id
    )
    make_run(
        store,
        task_id="prep",
        run_id="run-1",
        status=records.FAILED,
        created_at="2026-10-31T00:00:00+00:00",
        with_files=False,
    )
    rows = client.get("/mlpipe/api/runs").json()["rows"]
    assert [r["step_run_id"] for r in rows[:6]] == [reused.step_run_id, *[m.step_run_id for m in reversed(made)]]
    first = client.get("/mlpipe/api/runs?limit=2").json()
    assert [r["step_run_id"] for r in first["rows"]] == [reused.step_run_id, made[4].step_run_id]
    following = client.get("/mlpipe/api/runs", params={"limit": 2, "token": first["next_token"]}).json()
    assert [r["step_run_id"] for r in following["rows"]] == [made[3].step_run_id, made[2].step_run_id]
    for forged in ("+0:garbage", "+0:_mlpipe/index/runs/all/../../../x.json"):  # a made-up token: 400, not a page
        refused = client.get("/mlpipe/api/runs", params={"token": forged})
        assert refused.status_code == 400 and "the page token is not one this listing gave" in refused.json()["detail"]

    def ids(**params: str) -> list[str]:
        return [r["step_run_id"] for r in client.get("/mlpipe/api/runs", params=params).json()["rows"]]

    assert ids(reused="yes") == [reused.step_run_id]
    assert reused.step_run_id not in ids(reused="no") and len(ids(reused="no")) == 6
    assert ids(status="Failed") == [r for r in ids() if "prep" in r]
    assert ids(dag_id="ui_dag", task_id="prep") == ids(status="Failed") == ids(task_id="prep")
    assert ids(run_id="run-3") == [made[2].step_run_id]
    assert ids(dag_id="other_dag") == []
    # a filtered listing pages on from the very next row: every kept row once, in order, none skipped
    paged: list[str] = []
    token: str | None = None
    while True:
        answer = client.get(
            "/mlpipe/api/runs", params={"reused": "no", "limit": 2, **({"token": token} if token else {})}
        )
        paged += [r["step_run_id"] for r in answer.json()["rows"]]
        token = answer.json()["next_token"]
        if token is None:
            break
    assert paged == ids(reused="no") and len(paged) == 6
    # the page: rows, the reused badge, a compare form and the older page's link
    page = client.get("/mlpipe/runs?limit=3")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count('class="badge status-reused"') == 1 and 'action="/mlpipe/compare"' in page.text
    assert "Older step runs" in page.text and "token=" in page.text


def test_a_step_run_page_shows_metrics_as_charts_tables_and_images(client: Any, store: Datastore) -> None:
    made = make_run(store, params={"lr": 0.1})
    data = client.get(f"/mlpipe/api/runs/{made.step_run_id}").json()
    metrics = data["metrics"]
    assert metrics["scalars"] == [{"name": "accuracy", "value": 0.93, "description": ""}]
    charts = {c["name"]: c for c in metrics["charts"]}
    assert charts["loss"]["series"] == {"loss": [0.9, 0.5, 0.3, 0.2]} and charts["loss"]["x"] == [1, 2, 3, 4]
    assert charts["curve"]["x_label"] == "epoch" and charts["curve"]["x"] == [0, 1, 2, 3, 4, 5]
    assert charts["curve"]["series"]["loss"] == [pytest.approx(1 / (e + 1)) for e in range(6)]
    assert charts["lr_schedule"]["series"] == {"lr_schedule": [0.1, 0.05, 0.01]}
    tables = {t["name"]: t for t in metrics["tables"]}
    assert tables["confusion"] == {
        "name": "confusion",
        "columns": ["count", "label"],  # records are stored with sorted keys
        "rows": [[7, "a"], [3, "b"]],
        "description": "",
    }
    assert tables["curve"]["columns"] == ["epoch", "loss"] and len(tables["curve"]["rows"]) == 6
    assert metrics["images"] == [{"name": "roc", "path": "images/roc.png", "description": ""}]
    assert data["parameters"] == {"used": {"learning_rate": 0.1}, "run": {"lr": 0.1}}
    assert data["reuse"]["reused"] is False and data["reuse"]["explanation"] == ["no earlier run of this step"]
    assert "metric_log" not in data["record"]
    page = client.get(_run_url(made.step_run_id)).text
    for expected in ('data-chart-name="loss"', 'data-chart-name="curve"', 'data-table-name="confusion"', "ui_model:1"):
        assert expected in page, expected
    image = f'src="/mlpipe/runs/{quote(made.step_run_id, safe="")}/files/artifacts/images/roc.png"'
    assert image in page and "Reused from" not in page
    assert "/mlpipe/static/uPlot.iife.min.js" in page and "https://" not in _scripts(page)


def test_metrics_that_are_not_finite_numbers_show_as_null(client: Any, store: Datastore) -> None:
    """A diverged loss (NaN, an infinity) kept in a record: the API answers strict JSON with null (FastAPI's
    pydantic serializer writes null), the page (its chart data: ``tojson_attr``) and the compare view show it."""
    made = make_run(store, params={"lr": 0.1})
    other = make_run(store, run_id="run-2", created_at="2026-11-02T00:00:00+00:00")
    record = {**made.record, "metrics": {**made.record["metrics"], "accuracy": float("nan"), "gain": float("inf")}}
    records.write_record(record, store)
    answer = client.get(f"/mlpipe/api/runs/{made.step_run_id}")
    assert answer.status_code == 200, answer.text
    body = json.loads(answer.text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    scalars = {m["name"]: m["value"] for m in body["metrics"]["scalars"]}
    assert scalars == {"accuracy": None, "gain": None}
    assert client.get(_run_url(made.step_run_id)).status_code == 200
    compared = client.get("/mlpipe/api/compare", params=[("ids", made.step_run_id), ("ids", other.step_run_id)])
    assert compared.status_code == 200 and {"name": "accuracy", "values": [None, 0.93]} in compared.json()["scalars"]


def _scripts(page: str) -> str:
    return " ".join(re.findall(r"<script[^>]*src=\"([^\"]+)\"", page))


def test_a_reused_step_run_says_so_first_and_links_the_run_it_reused(client: Any, store: Datastore) -> None:
    earlier = make_run(store, run_id="run-1")
    reused = make_run(store, run_id="run-2", reused_from=earlier.step_run_id, created_at="2026-11-02T00:00:00+00:00")
    data = client.get(f"/mlpipe/api/runs/{reused.step_run_id}").json()
    assert data["reuse"]["reused"] is True and data["origin"]["step_run_id"] == earlier.step_run_id
    assert data["images_of"] == earlier.step_run_id  # its metrics' images are the earlier run's artifacts
    assert {c["name"] for c in data["metrics"]["charts"]} == {"loss", "curve", "lr_schedule"}
    page = client.get(_run_url(reused.step_run_id)).text
    main = page[page.index("<main>") :]
    assert main.index("Reused from") < main.index("<h1>")
    assert f'href="{_run_url(earlier.step_run_id)}"' in main[: main.index("<h1>")]
    assert "the same key as" in page


def test_downloads_stay_in_the_step_runs_own_folders(client: Any, store: Datastore) -> None:
    made = make_run(store)
    other = make_run(store, run_id="run-2")
    store.write_text(f"{records.artifacts_folder(made.step_run_id)}/unlisted.txt", "not listed")
    log = client.get(_run_url(made.step_run_id, "/files/logs/try-1.txt"))
    assert (log.status_code, log.text) == (200, "the whole log\n")
    artifact = client.get(_run_url(made.step_run_id, "/files/artifacts/outputs/summary.txt"))
    assert artifact.status_code == 200 and artifact.text == "a summary\n"
    assert (
        "attachment" in artifact.headers["content-disposition"] or "inline" in artifact.headers["content-disposition"]
    )
    image = client.get(_run_url(made.step_run_id, "/files/artifacts/images/roc.png"))
    assert image.content == PNG and image.headers["content-type"] == "image/png"
    refused = [
        "/files/artifacts/unlisted.txt",
        "/files/artifacts/../record.json",
        "/files/artifacts/%2e%2e/record.json",
        "/files/artifacts/outputs/../../spec.json",
        "/files/logs/../record.json",
        "/files/logs/%2e%2e%2fspec.json",
        "/files/record/record.json",
        "/files/artifacts//etc/passwd",
        f"/files/artifacts/../../{other.step_run_id}/artifacts/outputs/summary.txt",
    ]
    for suffix in refused:
        answer = client.get(_run_url(made.step_run_id, suffix))
        assert answer.status_code == 404, (suffix, answer.status_code)
        assert "not listed" not in answer.text and '"step_run_id"' not in answer.text
    for bad_id in ("..", ".", "a/../b", "x%2F..%2Fy"):
        assert client.get(f"/mlpipe/runs/{bad_id}/files/logs/try-1.txt").status_code == 404, bad_id


def test_dag_read_permission_scopes_every_page(client: Any, store: Datastore, deny: set[str]) -> None:
    mine = make_run(store)
    secret = make_run(store, dag_id="secret_dag", run_id="run-9", created_at="2026-11-09T00:00:00+00:00")
    deny.add("secret_dag")
    assert client.get(f"/mlpipe/api/runs/{secret.step_run_id}").status_code == 403
    assert client.get(_run_url(secret.step_run_id)).status_code == 403
    assert client.get(_run_url(secret.step_run_id, "/files/logs/try-1.txt")).status_code == 403
    assert client.get("/mlpipe/api/runs?dag_id=secret_dag").status_code == 403
    assert client.get("/mlpipe/tabs/task?dag_id=secret_dag&run_id=run-9&task_id=train").status_code == 403
    compare = client.get("/mlpipe/api/compare", params=[("ids", mine.step_run_id), ("ids", secret.step_run_id)])
    assert compare.status_code == 403
    rows = client.get("/mlpipe/api/runs").json()["rows"]
    assert [r["step_run_id"] for r in rows] == [mine.step_run_id]
    page = client.get("/mlpipe/runs").text
    assert "secret_dag" not in page
    assert client.get(f"/mlpipe/api/runs/{mine.step_run_id}").status_code == 200


def test_no_datastore_credential_reaches_a_page(client: Any, azurite: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default datastore on Azurite: pages show the records, never the connection's account key."""
    import json

    from airflow_mlpipe.storage import resolve
    from tests.conftest import make_azurite_datastore

    azure = make_azurite_datastore(azurite, name="mlpipe_default")
    conn = {"conn_type": "mlpipe_datastore", "extra": {"url": azure.config.url, **azure.config.storage_options}}
    monkeypatch.setenv("AIRFLOW_CONN_MLPIPE_DEFAULT", json.dumps(conn))
    resolve.clear_cache()
    store = Datastore.get_default()
    assert store.protocol in ("abfs", "az")
    made = make_run(store)
    secret = azurite.connection_string.split("AccountKey=")[1].split(";")[0]
    for path in (
        "/mlpipe/runs",
        "/mlpipe/api/runs",
        _run_url(made.step_run_id),
        f"/mlpipe/api/runs/{made.step_run_id}",
        "/mlpipe/datasets",
    ):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert secret not in answer.text and "AccountKey" not in answer.text, path
    assert client.get(_run_url(made.step_run_id, "/files/logs/try-1.txt")).text == "the whole log\n"


def test_compare_puts_metrics_side_by_side_and_marks_what_differs(client: Any, store: Datastore) -> None:
    a = make_run(store, run_id="run-1", params={"lr": 0.1})
    b = make_run(store, run_id="run-2", params={"lr": 0.5}, created_at="2026-11-02T00:00:00+00:00")
    data = client.get("/mlpipe/api/compare", params=[("ids", a.step_run_id), ("ids", b.step_run_id)]).json()
    assert data["same_task"] is True
    assert data["scalars"] == [{"name": "accuracy", "values": [0.93, 0.93]}]
    params = {p["name"]: p for p in data["parameters"]}
    assert params["lr"] == {"name": "lr", "values": [0.1, 0.5], "same": False}
    assert params["learning_rate"]["values"] == [0.1, 0.5]
    key = {k["name"]: k for k in data["key"]}
    assert key["script"]["same"] is True and key["arguments"]["same"] is False
    loss = next(c for c in data["charts"] if c["name"] == "loss")
    assert [r["step_run_id"] for r in loss["runs"]] == [a.step_run_id, b.step_run_id]
    page = client.get("/mlpipe/compare", params=[("ids", a.step_run_id), ("ids", b.step_run_id)]).text
    assert 'class="differs"' in page and 'data-chart-name="loss"' in page
    assert client.get("/mlpipe/api/compare", params=[("ids", a.step_run_id)]).status_code == 404


def test_datasets_versions_and_lineage(client: Any, store: Datastore) -> None:
    from airflow_mlpipe.datasets.manifest import Manifest
    from airflow_mlpipe.datasets.registry import DatasetRegistry

    producer = make_run(store)
    registry = DatasetRegistry(store)
    for n in range(1, 4):
        store.write_text(f"data/v{n}/part.csv", "x\n" * n)
        manifest = Manifest.of([])  # the content does not matter to the page; each version differs by its path
        registry.register(
            name="ui_model",
            kind="file",
            definition={"paths": [{"datastore": store.name, "path": f"data/v{n}"}], "options": {"n": n}},
            manifest=manifest,
            lineage={"step_run_id": producer.step_run_id, "dag_id": "ui_dag", "run_id": "run-1", "task_id": "train"},
        )
    reader = make_run(store, task_id="score", run_id="run-2")
    reader.record["inputs"] = [{"name": "model", "dataset": {"kind": "file", "name": "ui_model", "version": 2}}]
    assert lineage.note_readers(reader.record, store) == 1
    names = client.get("/mlpipe/api/datasets").json()
    assert names == {"names": ["ui_model"], "next": None}
    data = client.get("/mlpipe/api/datasets/ui_model?version=2").json()
    assert data["latest"] == 3 and [v["version"] for v in data["versions"]] == [3, 2, 1]
    assert data["version"]["version"] == 2 and data["version"]["produced_by"]["step_run_id"] == producer.step_run_id
    assert [r["step_run_id"] for r in data["readers"]] == [reader.step_run_id]
    assert client.get("/mlpipe/api/datasets/ui_model?version=1").json()["readers"] == []
    page = client.get("/mlpipe/datasets/ui_model?version=2").text
    assert '<svg class="lineage"' in page and _run_url(reader.step_run_id) in page
    assert _run_url(producer.step_run_id) in page
    assert client.get("/mlpipe/datasets/nope").status_code == 404
    assert client.get("/mlpipe/datasets/ui_model?version=9").status_code == 404


def test_a_refused_version_is_shown_as_refused_not_served(client: Any, store: Datastore) -> None:
    """A version record a step script rewrote is listed with the reason it is refused; the others are served."""
    from airflow_mlpipe.datasets.manifest import Manifest
    from airflow_mlpipe.datasets.registry import REGISTRY_ROOT, DatasetRegistry

    registry = DatasetRegistry(store)
    for n in (1, 2):
        definition = {"paths": [{"datastore": store.name, "path": f"data/v{n}"}], "options": {"n": n}}
        registry.register(name="ui_tampered", kind="file", definition=definition, manifest=Manifest.of([]))
    record = store.read_json(f"{REGISTRY_ROOT}/ui_tampered/1.json")
    store.write_json(f"{REGISTRY_ROOT}/ui_tampered/1.json", {**record, "description": "rewritten"})
    data = client.get("/mlpipe/api/datasets/ui_tampered").json()
    rows = {v["version"]: v for v in data["versions"]}
    assert "error" not in rows[2] and "changed after it was registered" in rows[1]["error"]
    assert client.get("/mlpipe/api/datasets/ui_tampered?version=1").status_code == 404


def test_the_extra_link_is_the_step_run_page_in_the_ui() -> None:
    srid = "dag.run.task.t1.0123456789ab"
    uri = f"az://container/prefix/_mlpipe/runs/{srid}/record.json"
    assert urls.step_run_id_of_record_uri(uri) == srid
    assert urls.step_run_page(srid) == f"/plugin/ml-pipelines/mlpipe/runs/{srid}"
    assert urls.step_run_id_of_record_uri("file:///data/other.json") is None


def test_links_and_tabs_follow_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/team-a/")
    assert urls.step_run_page("x.y.z.t1.0") == "/team-a/plugin/ml-pipelines/mlpipe/runs/x.y.z.t1.0"
    from airflow_mlpipe.plugins import external_views

    assert all(v["href"].startswith("/team-a/mlpipe/") for v in external_views())


def test_the_plugin_registers_the_nav_entry_and_the_tabs() -> None:
    from airflow_mlpipe.plugins import MlpipePlugin

    views = {v["destination"]: v for v in MlpipePlugin.external_views}
    assert set(views) == {"nav", "dag", "dag_run", "task_instance"}
    assert views["nav"]["nav_top_level"] is True and views["nav"]["url_route"] == urls.NAV_ROUTE
    task_tab = "/mlpipe/tabs/task?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}"
    assert views["task_instance"]["href"].endswith(task_tab)


def test_readers_are_found_by_dataset_version_and_through_a_registered_output(store: Datastore) -> None:
    producer = make_run(store)  # registered its output "model" as ui_model:1
    out = producer.record["outputs"][0]
    reader = {
        "step_run_id": "ui_dag.run-2.score.t1.0123456789ab",
        "dag_id": "ui_dag",
        "run_id": "run-2",
        "task_id": "score",
        "created_at": "2026-11-02T00:00:00+00:00",
        "inputs": [
            {"name": "by_name", "dataset": {"kind": "file", "name": "ui_data", "version": 3}},
            {"name": "latest", "dataset": {"kind": "by_name", "name": "ui_data", "version": "latest"}},
            {"name": "model", "datastore": out["datastore"], "path": out["path"], "producer": "train"},
            {"name": "plain", "datastore": "mlpipe_default", "path": "raw/x", "producer": "prep"},
        ],
    }
    assert lineage.versions_read(reader, store) == [("ui_data", 3, "by_name"), ("ui_model", 1, "model")]
    assert lineage.note_readers(reader, store) == 2
    (entry,) = lineage.readers_page(store, "ui_model", 1)
    assert (entry["step_run_id"], entry["input"], entry["task_id"]) == (reader["step_run_id"], "model", "score")


def test_a_final_record_indexes_its_readers_and_a_reindex_indexes_older_ones(
    store: Datastore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow_mlpipe.steps import run_index

    reader = make_run(store, task_id="score", run_id="run-2")  # its final record read ui_data:1
    assert [r["step_run_id"] for r in lineage.readers_page(store, "ui_data", 1)] == [reader.step_run_id]
    # records written before readers were indexed with them: the next first listing indexes them, once
    store.delete(lineage.readers_folder("ui_data", 1), recursive=True)
    store.write_json(run_index.INDEXED_MARKER, {"format": run_index.SUMMARY_FORMAT, "records": 1})
    assert lineage.readers_page(store, "ui_data", 1) == []
    assert run_index.ensure_indexed(store) >= 1
    assert [r["step_run_id"] for r in lineage.readers_page(store, "ui_data", 1)] == [reader.step_run_id]
    assert run_index.ensure_indexed(store) == 0
    # lineage is for people: a failure to index the readers never fails the record's write
    monkeypatch.setattr(lineage, "note_readers", lambda record, store: 1 / 0)
    records.write_record(reader.record, store)
    assert "could not index the dataset versions it read" in caplog.text
    assert records.read_record(reader.step_run_id, store)["status"] == reader.record["status"]


def test_a_page_viewed_again_reads_only_the_summaries_of_unfinished_runs(
    client: Any, store: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = make_run(store, run_id="run-1", with_files=False)
    running = make_run(store, run_id="run-2", status=records.RUNNING, with_files=False)
    first = client.get("/mlpipe/api/runs").json()["rows"]
    read: list[str] = []
    original = Datastore.read_many

    def counting(self: Datastore, paths: Any) -> Any:
        paths = list(paths)
        read.extend(paths)
        return original(self, paths)

    monkeypatch.setattr(Datastore, "read_many", counting)
    again = client.get("/mlpipe/api/runs").json()["rows"]
    assert again == first and {r["step_run_id"] for r in again} == {done.step_run_id, running.step_run_id}
    assert len(read) == 1 and running.step_run_id in read[0]
