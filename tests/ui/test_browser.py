"""The ML pages in a real browser against the real api-server, with the example pipeline's records: the nav entry,
every page renders, a chart holds the logged points, the reused badge and "Reused from" link, the extra link
opens the step run page, the task instance tab, and an unauthenticated visit is refused.

Set ``MLPIPE_UI_SCREENSHOTS=1`` to save the screenshots the README shows to ``docs/images/``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.browser import chromium_path, signed_in_page
from tests.scheduler import AirflowServices
from tests.ui.conftest import EXAMPLE, Example

REPO = Path(__file__).resolve().parent.parent.parent
NAV_FRAME = "iframe[title='ML pipelines']"


@pytest.fixture(scope="module")
def services(example: Example, airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServices]:
    """The api-server alone, on the metadata DB the example ran in, with the example's default datastore."""
    from tests.airflow_utils import EXAMPLES

    home = tmp_path_factory.mktemp("ui-api-server")
    database = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    env = {"MLPIPE_HOME": str(example.mlpipe_home)}
    server = AirflowServices(home, EXAMPLES, env, database=database, components=("api-server",), migrated=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("MLPIPE_UI_SCREENSHOTS"):
        folder = REPO / "docs" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


def _ml(frame_page: Any) -> Any:
    return frame_page.frame_locator(NAV_FRAME)


def _open(page: Any, services: AirflowServices, path: str) -> Any:
    """``path`` of the ML app inside Airflow's frame (the address an extra link or the nav entry gives)."""
    page.goto(f"{services.url}/plugin/ml-pipelines/mlpipe{path}")
    return _ml(page)


def test_an_unauthenticated_visit_is_refused(services: AirflowServices, example: Example) -> None:
    from playwright.sync_api import sync_playwright

    srid = example.second["train"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            for path in ("/mlpipe/runs", f"/mlpipe/runs/{quote(srid, safe='')}", "/mlpipe/api/runs"):
                answer = page.goto(services.url + path)
                assert answer is not None and answer.status == 401, (path, answer and answer.status)
                assert "loss" not in page.content()
        finally:
            browser.close()


def test_the_ml_pages_in_a_real_browser(services: AirflowServices, example: Example, shots: Path) -> None:
    first, second = example.first, example.second
    train = example.record(second["train"])
    with signed_in_page(services.url, *services.admin_password) as page:
        page.set_viewport_size({"width": 1400, "height": 1000})
        # the top-level nav entry opens the step runs page
        page.get_by_role("link", name="ML pipelines").first.click()
        frame = _ml(page)
        frame.locator(f"tr[data-step-run='{second['train']}']").wait_for()
        assert frame.locator("tr[data-step-run]").count() >= 6
        assert frame.locator("tr .status-reused").count() >= 1  # data_prep of the second run
        page.screenshot(path=str(shots / "ml-step-runs.png"))

        # the step run page: a chart with the logged points
        frame = _open(page, services, f"/runs/{quote(second['train'], safe='')}")
        frame.locator("figure.chart.rendered[data-chart-name='loss']").wait_for()
        figure = frame.locator("figure.chart[data-chart-name='training_curve']")
        assert figure.get_attribute("data-points") == str(len(train["metrics"]["training_curve"]["loss"]))
        drawn = frame.locator("body").evaluate("() => window.mlpipeCharts['loss'].series[0]")
        assert drawn == train["metrics"]["loss"]
        assert frame.locator("figure.chart[data-chart-name='loss'] canvas").count() == 1
        assert frame.get_by_text("learning_rate").first.is_visible()
        frame.get_by_role("cell", name="0.5", exact=True).first.wait_for()  # the parameter this run trained with
        page.set_viewport_size({"width": 1400, "height": 1700})
        page.screenshot(path=str(shots / "ml-step-run.png"))
        page.set_viewport_size({"width": 1400, "height": 1000})

        # a reused step says so first, and links the step run it reused
        frame = _open(page, services, f"/runs/{quote(second['data_prep'], safe='')}")
        banner = frame.locator(".reused-banner")
        banner.wait_for()
        assert "Reused from" in banner.inner_text()
        assert frame.locator("h1 .status-reused").count() == 1
        banner.get_by_role("link").click()
        # the banner itself shows that id: wait for the page of the step run it names, not for the text
        frame.locator(f"p.step-run-id:text-is('{first['data_prep']}')").wait_for()
        assert frame.locator("h1 .status-completed").count() == 1
        assert frame.locator(".reused-banner").count() == 0

        # the extra link of a task instance (its Details tab) opens its step run page
        run_id = train["run_id"]
        page.goto(f"{services.url}/dags/{EXAMPLE}/runs/{quote(run_id, safe='')}/tasks/train/details")
        link = page.get_by_role("link", name="Step run record")
        link.wait_for()
        assert link.get_attribute("href") == f"/plugin/ml-pipelines/mlpipe/runs/{second['train']}"
        link.click()
        page.wait_for_url(f"**/plugin/ml-pipelines/mlpipe/runs/{second['train']}")
        _ml(page).locator("figure.chart.rendered[data-chart-name='loss']").wait_for()

        # the task instance tab of the reused step: "Reused from" first
        page.goto(f"{services.url}/dags/{EXAMPLE}/runs/{quote(run_id, safe='')}/tasks/data_prep/plugin/mlpipe-task")
        tab = page.frame_locator("iframe[title='ML step run']")
        tab.locator(".reused-banner").wait_for()
        assert tab.locator("main > *").first.evaluate("e => e.className").startswith("banner")
        page.get_by_role("heading", name="data_prep").first.wait_for()  # Airflow's own header, for the screenshot
        page.screenshot(path=str(shots / "ml-task-tab.png"))

        # the DAG run tab lists the run's step runs
        page.goto(f"{services.url}/dags/{EXAMPLE}/runs/{quote(run_id, safe='')}/plugin/mlpipe-dag-run")
        dag_run_tab = page.frame_locator("iframe[title='ML step runs']")
        dag_run_tab.locator(f"tr[data-step-run='{second['compare']}']").wait_for()
        assert dag_run_tab.locator("tr[data-step-run]").count() == 3

        # the dataset page with its lineage
        frame = _open(page, services, "/datasets/iris_model")
        frame.locator("svg.lineage").wait_for()
        assert frame.locator("svg.lineage .node.step").count() == 1
        page.screenshot(path=str(shots / "ml-dataset.png"), full_page=True)

        # compare the two trainings
        ids = f"ids={quote(first['train'], safe='')}&ids={quote(second['train'], safe='')}"
        frame = _open(page, services, f"/compare?{ids}")
        frame.locator("figure.chart.rendered[data-chart-name='loss']").wait_for()
        assert frame.locator("tr.differs").filter(has_text="learning_rate").count() >= 1
        page.screenshot(path=str(shots / "ml-compare.png"), full_page=True)

        # dark mode follows Airflow's
        page.emulate_media(color_scheme="dark")
        frame = _open(page, services, f"/runs/{quote(second['train'], safe='')}")
        frame.locator("figure.chart.rendered[data-chart-name='loss']").wait_for()
        theme = frame.locator("html").get_attribute("data-theme")
        assert theme == "dark", theme
        page.screenshot(path=str(shots / "ml-step-run-dark.png"))
