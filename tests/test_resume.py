"""Resume: a changed parameter reruns its step and those after it; a failure is recorded and never trusted."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import make_read_only, quiet_config
from spikeline.formats.spikeglx import ap_bin_path, np1_probe, write_ap_stream
from spikeline.layout import ResultsLayout
from spikeline.pipeline import run_pipeline
from spikeline.provenance import read_json
from spikeline.synthetic import make_spikeglx_session

STREAM = "block0_imec0.ap_recording1"
ALL_STEPS = ["preprocess", "sort", "postprocess", "curate", "visualize"]


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
    assert summary.streams[0].steps_run == ["curate", "visualize"]
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
    """A 1-second probe crashes Kilosort4 (non-finite whitening); the other probe of the session completes."""
    session = make_spikeglx_session(tmp_path / "data", num_channels=32, duration_s=20.0, num_units=8, seed=7)
    from spikeinterface.core import generate_ground_truth_recording

    short, _ = generate_ground_truth_recording(durations=[1.0], sampling_frequency=30000.0, num_channels=32,
                                               num_units=2, probe=np1_probe(32), seed=3)
    write_ap_stream(short, ap_bin_path(session.data_dir.parent, "synthetic", probe_index=1))
    make_read_only(session.data_dir)
    results = tmp_path / "results"
    config = quiet_config()
    summary = run_pipeline(session.data_dir, results, config)

    by_stream = {s.stream: s for s in summary.streams}
    assert by_stream[STREAM].status == "ok"
    failed = by_stream["block0_imec1.ap_recording1"]
    assert failed.status == "failed" and not summary.ok
    assert failed.reason.startswith("sort: ") and "\n" not in failed.reason
    assert (results / "provenance" / failed.stream / "sorter_spikeinterface_log.json").exists()  # sorter log kept
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


def test_stream_with_too_many_bad_channels_is_skipped_with_its_reason(tmp_path):
    """Flat (dead) channels: above max_bad_channel_fraction the stream is skipped, not sorted, and says why."""
    import numpy as np
    from spikeinterface.core import NumpyRecording

    probe = np1_probe(32)
    rng = np.random.default_rng(0)
    traces = rng.normal(0, 10, size=(30000 * 5, 32)).astype("float32")
    traces[:, :20] = 0.0  # 20 of 32 channels dead
    recording = NumpyRecording([traces], sampling_frequency=30000.0)
    recording.set_probe(probe)
    data = tmp_path / "raw"
    write_ap_stream(recording, ap_bin_path(data, "dead"))
    results = tmp_path / "results"
    summary = run_pipeline(data / "dead_g0", results, quiet_config())
    stream = summary.streams[0]
    assert stream.status == "skipped" and summary.ok
    assert stream.steps_run == ["preprocess"]
    assert "max_bad_channel_fraction=0.5" in stream.reason and "dead" in stream.reason
    layout = ResultsLayout(results)
    record = read_json(layout.step_record("preprocess", stream.stream))
    assert record["status"] == "skipped" and len(record["outputs"]["bad_channel_ids"]) >= 20
    assert not layout.step_output("preprocess", stream.stream).exists()
    again = run_pipeline(data / "dead_g0", results, quiet_config())  # a skip is final: not redone
    assert again.streams[0].steps_reused == ["preprocess"] and again.streams[0].steps_run == []
