"""``spikeline view`` in a real browser: Debian's chromium driven by Playwright (no browser download).

Set ``SPIKELINE_SCREENSHOTS_DIR`` to also copy the screenshots there (``docs/images`` holds the README's).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")

from spikeline.layout import ResultsLayout  # noqa: E402
from spikeline.web import ViewerServer  # noqa: E402
from spikeline.web.curation import default_curator  # noqa: E402

CHROMIUM = Path(os.environ.get("SPIKELINE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STREAM = "block0_imec0.ap_recording1"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def served(webapp_results_source, tmp_path_factory):
    results = tmp_path_factory.mktemp("webapp_browser") / "results"
    shutil.copytree(webapp_results_source, results, symlinks=True)
    server = ViewerServer(results, port=0).start()
    yield results, server
    server.stop()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium_profile")), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        yield page
        context.close()


def screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("SPIKELINE_SCREENSHOTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


def test_review_relabel_compare_export_apply(served, page, tmp_path):
    import spikeinterface as si
    from spikeinterface.curation import load_curation

    results, server = served
    page.goto(server.url)
    page.wait_for_selector("table.dashboard")
    row = page.locator(f"tr[data-stream='{STREAM}']")
    assert "ok" in row.inner_text() and "NP" in row.inner_text()
    assert screenshot(page, tmp_path, "dashboard.png").stat().st_size > 0

    # stream view: the unit table, sortable
    row.locator("a").click()
    page.wait_for_selector("#table-wrap[data-ready]")
    unit_ids = page.locator("#unit-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.unit)")
    assert len(unit_ids) >= 2
    page.locator("#unit-table th[data-col='unit_id']").click()  # descending
    assert page.locator("#unit-table tbody tr").first.get_attribute("data-unit") == unit_ids[-1]
    page.wait_for_selector("#drift canvas")
    screenshot(page, tmp_path, "stream.png")

    # open a unit, relabel it, reload: the label persists (saved on the server)
    first, second = unit_ids[0], unit_ids[1]
    page.locator(f"#unit-table tbody tr[data-unit='{first}'] a").click()
    page.wait_for_selector(f"#unit-view[data-ready='{first}']")
    page.locator(f".label-controls[data-unit='{first}'] button[data-label='SUA']").click()
    page.wait_for_selector(f".label-controls[data-unit='{first}'] .current-label.label-SUA")
    page.reload()
    page.wait_for_selector(f"#unit-view[data-ready='{first}']")
    assert page.locator(f".label-controls[data-unit='{first}'] .current-label").inner_text() == "SUA"

    # compare two units (cross-correlogram grid) from the table's selection; remove the second one there
    page.goto(server.url + f"#/stream?session=.&stream={STREAM}")
    page.wait_for_selector("#table-wrap[data-ready]")
    assert page.locator(f"#unit-table tbody tr[data-unit='{first}'] td.label-SUA").count() == 1
    for unit in (first, second):
        page.locator(f"#unit-table tbody tr[data-unit='{unit}'] input[type=checkbox]").check()
    page.locator("#compare").click()
    page.wait_for_selector(f"#unit-view[data-ready='{first},{second}']")
    page.wait_for_selector("#ccg[data-ready]")
    assert page.locator("#ccg canvas").count() == 4
    page.locator(f".label-controls[data-unit='{second}'] button[data-remove]").click()
    page.wait_for_selector(f"#unit-view[data-ready='{first},{second}']")
    page.wait_for_selector("#ccg[data-ready]")
    page.wait_for_selector(f".label-controls[data-unit='{second}'] button.on[data-remove]")
    screenshot(page, tmp_path, "unit_comparison.png")

    # export the JSON: SpikeInterface's loader accepts it
    with page.expect_download() as download:
        page.locator("#download").click()
    exported = tmp_path / "exported_curation.json"
    download.value.save_as(exported)
    curation = load_curation(exported)
    labels = {str(m.unit_id): m.labels for m in curation.manual_labels}
    assert labels[first]["quality"] == ["SUA"] and [str(u) for u in curation.removed] == [second]

    # split the first unit at 5 s; the curation bar names the curator and the last change
    page.fill(f".label-controls[data-unit='{first}'] input[data-split-at]", "5")
    page.locator(f".label-controls[data-unit='{first}'] button[data-split]").click()
    page.wait_for_selector(f".label-controls[data-unit='{first}'] button[data-unsplit]")
    assert page.locator("#curator").inner_text() == default_curator()
    assert f"split unit {first} at 5 s" in page.locator("#curation-bar").inner_text()

    # apply: the manually curated sorting (and its NWB file) loads and reflects the changes
    page.locator("#apply").click()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('applied')")
    assert "NWB nwb/" in page.locator("#applied").inner_text()
    applied = si.load(ResultsLayout(results).manual_sorting(STREAM))
    applied_ids = [str(u) for u in applied.unit_ids]
    # second removed; first split in two new units, which keep its manual label
    assert second not in applied_ids and first not in applied_ids and len(applied_ids) == len(unit_ids)
    new_ids = [u for u in applied_ids if u not in unit_ids]
    assert len(new_ids) == 2 and all(applied.get_property("quality")[applied_ids.index(u)] == "SUA" for u in new_ids)
    assert page.errors == []
