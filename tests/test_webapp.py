"""HTTP-level tests of ``spikeline view``: endpoints, refusals (4xx with a JSON message), token, curation files."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import tree_checksums

from spikeline.cli import main
from spikeline.layout import ResultsLayout
from spikeline.web import ViewerServer
from spikeline.web.curation import MAX_CURATION_BYTES

STREAM = "block0_imec0.ap_recording1"


@pytest.fixture(scope="module")
def results(webapp_results_source, tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("webapp_http") / "results"
    shutil.copytree(webapp_results_source, copy, symlinks=True)
    return copy


@pytest.fixture(scope="module")
def server(results):
    srv = ViewerServer(results, port=0).start()
    yield srv
    srv.stop()


def request(server, path, params=None, body=None, headers=None, raw: bytes | None = None):
    """(status, decoded JSON or bytes) of one request; 4xx/5xx do not raise."""
    from urllib.parse import urlencode

    url = f"http://127.0.0.1:{server.port}{path}" + (f"?{urlencode(params)}" if params else "")
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            status, content, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, content, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    return status, (json.loads(content) if kind.startswith("application/json") else content)


def q(**extra):
    return {"session": ".", "stream": STREAM, **extra}


def test_dashboard_and_stream_views(server):
    status, dashboard = request(server, "/api/dashboard")
    assert status == 200
    (session,) = dashboard["sessions"]
    (stream,) = session["streams"]
    assert stream["stream"] == STREAM and stream["status"] == "ok" and stream["probe"]
    assert [s["name"] for s in stream["steps"]][:4] == ["preprocess", "sort", "postprocess", "curate"]
    assert stream["num_units"] >= 1 and stream["num_units_passing_qc"] is not None
    assert sum(stream["num_units_per_type"].values()) == stream["num_units"]

    status, table = request(server, "/api/units", q())
    assert status == 200 and {"unit_id", "default_qc", "decoder_label", "snr"} <= set(table["columns"])
    assert len(table["rows"]) == stream["num_units"]
    unit_ids = [row[0] for row in table["rows"]]

    status, unit = request(server, "/api/unit", q(unit=unit_ids[0]))
    assert status == 200 and unit["unit_id"] == unit_ids[0]
    assert len(unit["template_uv"]) == len(unit["channels"]) and unit["acg"]["counts"] and unit["isi"]["counts"]
    assert any(row["metric"] == "presence_ratio" and row["passed"] is not None for row in unit["qc"])

    if len(unit_ids) >= 2:
        status, ccg = request(server, "/api/ccg", q(units=",".join(unit_ids[:2])))
        assert status == 200 and len(ccg["counts"]) == 2 and len(ccg["counts"][0][1]) == len(ccg["bins_ms"]) - 1
    status, drift = request(server, "/api/drift", q())
    assert status == 200 and len(drift["time_s"]) == len(drift["depth_um"]) > 0
    for kind in ("raw", "preprocessed"):
        status, traces = request(server, "/api/traces", q(kind=kind, start_s=1, duration_s=0.2, units=unit_ids[0]))
        assert status == 200 and len(traces["traces_uv"]) == 16 and traces["spikes"][0]["unit_id"] == unit_ids[0]
    status, page = request(server, "/")
    assert status == 200 and b"/static/app.js" in page and b"https://" not in page


@pytest.mark.parametrize("path, params, expected", [
    ("/api/unit", q(unit="no-such-unit"), 404),
    ("/api/unit", {"session": "elsewhere", "stream": STREAM, "unit": "0"}, 404),
    ("/api/unit", {"session": ".", "stream": "../postprocessed", "unit": "0"}, 404),
    ("/api/units", {"session": "."}, 400),
    ("/api/ccg", q(units="a"), 400),
    ("/api/traces", q(kind="raw", start_s="nan", duration_s=1), 400),
    ("/api/traces", q(kind="elsewhere", start_s=0, duration_s=1), 400),
    ("/api/file", {"path": "../outside.txt"}, 400),
    ("/api/file", {"path": "/etc/passwd"}, 400),
    ("/api/file", {"path": "visualization/nothing.png"}, 404),
    ("/api/nothing", None, 404),
    ("/static/../../layout.py", None, 404),
])
def test_refusals_are_4xx_with_a_message(server, path, params, expected):
    status, body = request(server, path, params)
    assert status == expected
    assert isinstance(body, dict) and body["error"]


def test_files_stay_inside_results(server, results, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    link = results / "visualization" / "escape.txt"
    link.symlink_to(outside)
    try:
        status, body = request(server, "/api/file", {"path": "visualization/escape.txt"})
        assert status == 403 and "outside" in body["error"]
    finally:
        link.unlink()
    figure = next((results / "visualization" / STREAM).glob("*.png")).relative_to(results).as_posix()
    status, content = request(server, "/api/file", {"path": figure})
    assert status == 200 and content[:4] == b"\x89PNG"


def test_malformed_curations_are_refused(server, results):
    status, state = request(server, "/api/curation", q())
    assert status == 200 and state["saved"] is False
    document = state["curation"]
    unit = document["unit_ids"][0]
    bad = [
        (b"{not json", 400),
        (json.dumps([1, 2]).encode(), 400),
        (json.dumps({**document, "unit_ids": document["unit_ids"] + [10_000]}).encode(), 400),
        (json.dumps({**document, "manual_labels": [{"unit_id": unit, "labels": {"colour": ["red"]}}]}).encode(), 400),
        (json.dumps({**document, "manual_labels": [{"unit_id": unit, "labels": {"quality": ["great"]}}]}).encode(), 400),
        (json.dumps({**document, "merges": [{"unit_ids": [unit]}]}).encode(), 400),
        (json.dumps({**document, "format_version": "7"}).encode(), 400),
        (b" " * (MAX_CURATION_BYTES + 1), 413),
    ]
    for payload, expected in bad:
        status, body = request(server, "/api/curation", q(), raw=payload, headers={"Content-Type": "application/json"})
        assert status == expected, payload[:80]
        assert body["error"]
    assert not ResultsLayout(results).manual_curation_json(STREAM).exists()


def test_save_undo_apply_and_nothing_else_written(server, results):
    import spikeinterface as si
    from spikeinterface.curation import load_curation

    layout = ResultsLayout(results)
    curation_files = {layout.manual_curation_json(STREAM), layout.manual_curation_history(STREAM),
                      layout.manual_sorting(STREAM)}
    before = tree_checksums(results)
    _, state = request(server, "/api/curation", q())
    document = state["curation"]
    first = document["unit_ids"][0]
    document["manual_labels"] = [{"unit_id": first, "labels": {"quality": ["SUA"]}}]
    status, saved = request(server, "/api/curation", q(), body=document)
    assert status == 200 and saved["num_history_states"] == 1
    document["removed"] = [first]
    status, saved = request(server, "/api/curation", q(), body=document)
    assert status == 200 and saved["num_history_states"] == 2
    assert load_curation(layout.manual_curation_json(STREAM)).removed == [first]

    status, undone = request(server, "/api/curation/undo", q(), body={})
    assert status == 200 and undone["num_history_states"] == 1 and undone["curation"]["removed"] == []
    assert load_curation(layout.manual_curation_json(STREAM)).removed == []

    status, download = request(server, "/api/curation/download", q())
    assert status == 200 and download["manual_labels"][0]["labels"]["quality"] == ["SUA"]

    status, record = request(server, "/api/apply", q(), body={})
    assert status == 200 and record["num_units_out"] == len(document["unit_ids"])
    applied = si.load(layout.manual_sorting(STREAM))
    assert list(applied.get_property("quality"))[list(applied.unit_ids).index(first)] == "SUA"

    request(server, "/api/curation/undo", q(), body={})
    status, body = request(server, "/api/curation/undo", q(), body={})
    assert status == 409 and body["error"]

    after = tree_checksums(results)
    changed = {name for name in set(before) | set(after) if before.get(name) != after.get(name)}
    allowed = [p.relative_to(results).as_posix() for p in curation_files]
    assert changed and all(any(name.startswith(prefix) for prefix in allowed) for name in changed), changed


def test_token_and_host_checks(results):
    srv = ViewerServer(results, port=0, require_token=True).start()
    try:
        assert srv.token and f"token={srv.token}" in srv.url
        assert request(srv, "/api/dashboard")[0] == 403
        assert request(srv, "/api/dashboard", {"token": "wrong"})[0] == 403
        assert request(srv, "/", None)[0] == 403
        assert request(srv, "/api/dashboard", {"token": srv.token})[0] == 200
        assert request(srv, "/api/dashboard", headers={"X-Spikeline-Token": srv.token})[0] == 200
        status, _ = request(srv, "/api/dashboard", headers={"Cookie": f"spikeline_token={srv.token}"})
        assert status == 200
    finally:
        srv.stop()
    srv = ViewerServer(results, port=0).start()
    try:
        assert srv.token is None
        status, body = request(srv, "/api/dashboard", headers={"Host": "attacker.example:80"})
        assert status == 403 and "loopback" in body["error"]
    finally:
        srv.stop()


def test_cli_view_help():
    result = CliRunner().invoke(main, ["view", "--help"])
    assert result.exit_code == 0 and "--host" in result.output and "--port" in result.output


def test_a_stream_first_asked_by_many_requests_at_once_is_loaded_once(webapp_results_source, monkeypatch):
    """The browser opens a stream with several requests at once; they must share one load, and all file reads
    of a server go through one lock (CPython 3.11 fails with "AST constructor recursion depth mismatch" when
    two threads parse ``.npy`` headers together: CI saw it once on /api/units)."""
    import threading

    from spikeline.web import data

    loads = []

    class CountedStreamData(data.StreamData):
        def __init__(self, *args, **kwargs):
            loads.append(threading.get_ident())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(data, "StreamData", CountedStreamData)
    srv = ViewerServer(webapp_results_source, port=0).start()  # reads only
    try:
        paths = ["/api/stream", "/api/units", "/api/drift", "/api/curation"] * 3
        statuses = []
        barrier = threading.Barrier(len(paths))

        def ask(path):
            barrier.wait()
            statuses.append(request(srv, path, q())[0])

        threads = [threading.Thread(target=ask, args=(p,)) for p in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert statuses == [200] * len(paths)
        assert len(loads) == 1
        stream = srv.app.index.stream(".", STREAM)
        assert stream.io_lock is srv.app.index._io_lock
    finally:
        srv.stop()
