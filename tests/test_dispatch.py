"""Dispatch across formats and folder layouts: sessions at any depth, fan-out, debug clipping, clear problems."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from conftest import make_read_only, quiet_config, tree_checksums
from spikeline.cli import main
from spikeline.config import DispatchParams
from spikeline.formats.nwb import write_nwb_recording
from spikeline.formats.spikeglx import ap_bin_path, np1_probe, write_ap_stream
from spikeline.pipeline import run_pipeline
from spikeline.steps.dispatch import plan_sessions
from spikeline.synthetic import make_spikeglx_session


def _recording(num_channels=16, duration_s=4.0, seed=0, num_units=3):
    from spikeinterface.core import generate_ground_truth_recording

    recording, _ = generate_ground_truth_recording(durations=[duration_s], sampling_frequency=30000.0,
                                                   num_channels=num_channels, num_units=num_units,
                                                   probe=np1_probe(num_channels), seed=seed)
    return recording


def _two_shank_recording(duration_s=4.0):
    """16 channels in two groups (shanks) 250 um apart."""
    from probeinterface import generate_multi_shank

    from spikeinterface.core import generate_ground_truth_recording

    probe = generate_multi_shank(num_shank=2, shank_pitch=[250, 0], num_columns=2, num_contact_per_column=4)
    probe.set_device_channel_indices(list(range(probe.get_contact_count())))
    recording, _ = generate_ground_truth_recording(durations=[duration_s], sampling_frequency=30000.0,
                                                   num_channels=probe.get_contact_count(), num_units=3, probe=probe,
                                                   seed=5)
    return recording


def test_segments_are_jobs_unless_concatenated(tmp_path):
    data = tmp_path / "raw"
    for trigger in (0, 1):
        write_ap_stream(_recording(seed=trigger), ap_bin_path(data, "run", trigger=trigger))
    (plan,) = plan_sessions(data / "run_g0", DispatchParams())
    assert [j["stream"] for j in plan.jobs] == ["block0_imec0.ap_recording1", "block0_imec0.ap_recording2"]
    (plan,) = plan_sessions(data / "run_g0", DispatchParams(split_segments=False))
    assert [j["stream"] for j in plan.jobs] == ["block0_imec0.ap_recording1"]
    assert plan.jobs[0]["duration_s"] == pytest.approx(8.0)


def test_nwb_input_series_groups_and_lfp(tmp_path):
    path = write_nwb_recording(_two_shank_recording(), tmp_path / "mouse.nwb", extra_lfp_rate_hz=2500.0)
    (plan,) = plan_sessions(tmp_path, DispatchParams())
    assert plan.format == "nwb" and plan.name == "mouse"
    assert [j["stream"] for j in plan.jobs] == ["block0_acquisition-ElectricalSeries_recording1"]
    assert plan.jobs[0]["num_channels"] == 16
    assert any("LFP, not sorted" in item["reason"] for item in plan.not_sorted)
    (plan,) = plan_sessions(path, DispatchParams(split_groups=True))
    assert [j["num_channels"] for j in plan.jobs] == [8, 8]
    assert [j["stream"].rsplit("_", 1)[1] for j in plan.jobs] == ["group0", "group1"]


def test_nwb_without_electrode_positions_is_a_clear_problem(tmp_path):
    write_nwb_recording(_recording(), tmp_path / "nolocs.nwb", with_locations=False)
    (plan,) = plan_sessions(tmp_path, DispatchParams())
    assert plan.jobs == []
    (problem,) = plan.problems
    assert "has no electrode positions" in problem["error"] and "rel_x" in problem["error"]
    assert "There are no channel locations" not in problem["error"]


def test_debug_clipping_and_minimum_duration(tmp_path):
    data = tmp_path / "raw"
    write_ap_stream(_recording(duration_s=4.0), ap_bin_path(data, "long", probe_index=0))
    write_ap_stream(_recording(duration_s=1.0), ap_bin_path(data, "long", probe_index=1))
    (plan,) = plan_sessions(data, DispatchParams(debug=True, debug_duration_s=2.0))
    assert [(j["stream"], j["duration_s"]) for j in plan.jobs] == [("block0_imec0.ap_recording1", 2.0)]
    assert "shorter than the debug duration 2 s" in plan.not_sorted[-1]["reason"]
    (plan,) = plan_sessions(data, DispatchParams(min_duration_s=3.0))
    assert [j["stream"] for j in plan.jobs] == ["block0_imec0.ap_recording1"]
    assert "shorter than min_duration_s=3" in plan.not_sorted[-1]["reason"]


@pytest.fixture(scope="module")
def lab_share(tmp_path_factory):
    """A lab share: two SpikeGLX sessions at different depths and one NWB session, read-only."""
    root = tmp_path_factory.mktemp("share")
    data = root / "share"
    make_spikeglx_session(root / "a", run_name="day1", num_channels=16, duration_s=12.0, num_units=4, seed=1)
    (root / "a" / "raw" / "day1_g0").rename(_mkdir(data / "mouse1") / "day1_g0")
    make_spikeglx_session(root / "b", run_name="day2", num_channels=16, duration_s=12.0, num_units=4, seed=2)
    (root / "b" / "raw" / "day2_g0").rename(_mkdir(data / "mouse2" / "2026-01-02") / "day2_g0")
    write_nwb_recording(_recording(duration_s=12.0, seed=3, num_units=4), data / "mouse3" / "session.nwb")
    make_read_only(data)
    return data


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_discover_prints_sessions_without_running(lab_share):
    result = CliRunner().invoke(main, ["discover", str(lab_share)])
    assert result.exit_code == 0, result.output
    for name in ("mouse1_day1_g0", "mouse2_2026-01-02_day2_g0", "mouse3_session"):
        assert name in result.output
    assert "3 session(s), 3 stream(s) to sort, 0 problem(s)" in result.output
    assert "LF band" not in result.output


def test_nested_mixed_sessions_run_with_one_command(lab_share, tmp_path):
    before = tree_checksums(lab_share)
    results = tmp_path / "results"
    config = quiet_config(spikesorting={"sorter": "spykingcircus2"}, dispatch={"debug": True, "debug_duration_s": 10.0})
    summary = run_pipeline(lab_share, results, config)
    assert summary.ok, summary
    assert sorted(p.name for p in results.iterdir() if p.is_dir()) == [
        "mouse1_day1_g0", "mouse2_2026-01-02_day2_g0", "mouse3_session"]
    assert {s.status for s in summary.streams} == {"ok"}
    for session_dir in summary.session_dirs.values():
        assert (session_dir / "processing.json").exists()
        assert len(list((session_dir / "curated").iterdir())) == 1
    assert tree_checksums(lab_share) == before  # raw data untouched


def test_any_spikeinterface_reader_through_an_input_file(tmp_path):
    import probeinterface
    from spikeinterface.core import write_binary_recording

    recording = _recording(duration_s=2.0)
    session = tmp_path / "rig3" / "session7"
    session.mkdir(parents=True)
    write_binary_recording(recording, file_paths=[session / "traces.raw"], dtype="float32")
    probeinterface.write_probeinterface(session / "probe.json", recording.get_probegroup())
    spec = ("reader: read_binary\nreader_kwargs:\n  file_paths: [traces.raw]\n  sampling_frequency: 30000.0\n"
            "  num_channels: 16\n  dtype: float32\n")
    (session / "spikeline_input.yaml").write_text(spec + "probe: probe.json\n")
    (plan,) = plan_sessions(tmp_path, DispatchParams(input="spikeinterface"))
    assert plan.name == "rig3_session7" and plan.format == "spikeinterface" and not plan.problems
    (job,) = plan.jobs
    import spikeinterface as si

    reloaded = si.load(job["recording"])
    assert reloaded.has_probe() and reloaded.get_num_channels() == 16
    assert job["duration_s"] == pytest.approx(2.0)

    (session / "spikeline_input.yaml").write_text(spec)  # no probe: a clear problem
    (plan,) = plan_sessions(tmp_path, DispatchParams())
    assert plan.jobs == [] and "gives no probe geometry" in plan.problems[0]["error"]
    (session / "spikeline_input.yaml").write_text(spec.replace("read_binary", "read_binry"))
    (plan,) = plan_sessions(tmp_path, DispatchParams())
    assert "unknown reader 'read_binry'" in plan.problems[0]["error"]
