"""A moderator imports a file in real Chromium; a real Celery worker (its own process, on the
browser server's database and queue) does the import while the job page polls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.browser.support import ROOT, assert_accessible, log_in, screenshot
from tests.importers.conftest import acled_row, csv_bytes

pytestmark = [pytest.mark.browser, pytest.mark.worker]


@pytest.fixture(scope="module")
def import_worker(server_env, browser_db):
    log = open(ROOT / "test-artifacts" / "import-worker.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("celery")), "-A", "config", "worker",
         "--pool", "solo", "--concurrency", "1", "--without-heartbeat", "--without-gossip",
         "--without-mingle", "-l", "INFO"],
        cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    log.close()


def test_moderator_uploads_an_acled_file_and_reads_the_report(page, import_worker, db_query,
                                                             tmp_path):  # fmt: skip
    key = uuid.uuid4().hex[:8].upper()
    path = tmp_path / "acled.csv"
    path.write_bytes(
        csv_bytes(
            [
                acled_row(event_id_cnty=f"B{key}1", event_date="2010-05-01",
                          notes="Police detained 4 people."),
                acled_row(event_id_cnty=f"B{key}2", event_date="2010-05-02", longitude="east"),
            ]
        )
    )  # fmt: skip
    log_in(page, "moderator")
    page.goto("/review/imports/")
    page.get_by_label("File").set_input_files(str(path))
    page.get_by_label("Format").select_option("acled")
    page.get_by_role("button", name="Import").click()
    page.wait_for_url("**/review/imports/*/")

    # The page polls the job and reloads once the worker has finished it.
    page.wait_for_selector('#import-job[data-finished="true"]', timeout=60_000)
    assert page.locator('[data-count="created"]').inner_text() == "1"
    assert page.locator('[data-count="failed"]').inner_text() == "1"
    report = page.locator("table.import-issues tbody tr")
    assert report.count() == 1
    assert "longitude must be a decimal number of degrees." in report.inner_text()
    screenshot(page, "import-job")
    assert_accessible(page)

    rows = db_query(
        "SELECT e.status, e.arrests FROM tracker_event e JOIN tracker_externalid x "
        "ON x.event_id = e.id WHERE x.scheme = 'acled' AND x.value = %s",
        (f"B{key}1",),
    )
    assert rows == [("pending", 4)]
