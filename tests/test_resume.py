"""Resume: a changed parameter reruns its step and those after it; a failure is recorded and never trusted."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import make_read_only, quiet_config
from spikeline.formats.spikeglx import ap_bin_path, np1_probe, write_np1_ap_stream
from spikeline.layout import ResultsLayout
from spikeline.pipeline import run_pipeline
from spikeline.provenance import read_json
from spikeline.synthetic import make_spikeglx_session

STREAM = "block0_imec0.ap_recording1"
ALL_STEPS = ["preprocess", "sort", "postprocess", "curate"]


@pytest.fixture
def results_copy(ks4_run, tmp_path):
    session, results, _ = ks4_run
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    return session, copy


def test_changed_curation_threshold_reruns_only_curation(results_copy):
    session, results = results_copy
    config = quiet_config(curation={"default_qc": {"presence_ratio": {"greater": 0.99}}})
    summary = run_pipeline(session.data_dir, results, config)
    assert summary.streams[0].steps_reused == ["preprocess", "sort", "postprocess"]
    assert summary.streams[0].steps_run == ["curate"]
    record = read_json(ResultsLayout(results).step_record("curate", STREAM))
    assert record["parameters"]["default_qc"] == {"presence_ratio": {"less": None, "greater": 0.99}}


def test_changed_cmr_operator_reruns_preprocessing_and_everything_after(results_copy):
    session, results = results_copy
    layout = ResultsLayout(results)
    old_keys = {s: read_json(layout.step_record(s, STREAM))["key"] for s in ALL_STEPS}
    config = quiet_config(preprocessing={"common_reference": {"reference": "global", "operator": "average"}},
                          spikesorting={"sorter": "spykingcircus2"})
    summary = run_pipeline(session.data_dir, results, config)
    assert summary.ok
    assert summary.streams[0].steps_run == ALL_STEPS
    new = {s: read_json(layout.step_record(s, STREAM)) for s in ALL_STEPS}
    assert all(new[s]["key"] != old_keys[s] for s in ALL_STEPS)
    assert new["preprocess"]["parameters"]["common_reference"]["operator"] == "average"
    assert new["sort"]["inputs"]["preprocess"]["key"] == new["preprocess"]["key"]
    # only the finished outputs remain: no temporary folders
    assert not list(results.rglob(".*.tmp")) and not list(results.rglob(".*.sorter"))


def test_failed_stream_is_recorded_and_does_not_stop_the_others(tmp_path):
    """A 1-second probe crashes its sorter; the other probe of the session completes."""
    session = make_spikeglx_session(tmp_path / "data", num_channels=32, duration_s=60.0, num_units=12, seed=7)
    from spikeinterface.core import generate_ground_truth_recording

    short, _ = generate_ground_truth_recording(durations=[1.0], sampling_frequency=30000.0, num_channels=32,
                                               num_units=2, probe=np1_probe(32), seed=3)
    write_np1_ap_stream(short, ap_bin_path(session.data_dir.parent, "synthetic", probe_index=1))
    make_read_only(session.data_dir)
    results = tmp_path / "results"
    config = quiet_config(spikesorting={"sorter": "spykingcircus2"})
    summary = run_pipeline(session.data_dir, results, config)

    by_stream = {s.stream: s for s in summary.streams}
    assert by_stream[STREAM].status == "ok"
    failed = by_stream["block0_imec1.ap_recording1"]
    assert failed.status == "failed" and not summary.ok
    layout = ResultsLayout(results)
    step = failed.reason.split(":")[0]
    record = read_json(layout.step_record(step, failed.stream))
    assert record["status"] == "failed"
    assert "Traceback" in record["traceback"] and record["error"]
    assert "Traceback" in layout.step_log(step, failed.stream).read_text()
    assert not layout.step_output(step, failed.stream).exists()  # nothing half-written to trust
    processing = json.loads(layout.processing_json.read_text())
    assert ("failed", failed.stream) in {(p["status"], p["stream"]) for p in processing["data_processes"]}

    rerun = run_pipeline(session.data_dir, results, config)  # the failure is retried, the good stream reused
    rerun_by_stream = {s.stream: s for s in rerun.streams}
    assert rerun_by_stream[STREAM].steps_run == []
    assert step in rerun_by_stream[failed.stream].steps_run
