"""Dispatch across formats and folder layouts: sessions at any depth, fan-out, debug clipping, clear problems."""

from __future__ import annotations

import numpy as np
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
    """A lab share with one session per format at different depths, read-only."""
    import probeinterface
    from spikeinterface.core import write_binary_recording

    from spikeline.formats.aind import compressed_name
    from spikeline.formats.openephys import write_openephys_session

    root = tmp_path_factory.mktemp("share")
    data = root / "share"
    make_spikeglx_session(root / "a", run_name="day1", num_channels=16, duration_s=10.0, num_units=4, seed=1)
    (root / "a" / "raw" / "day1_g0").rename(_mkdir(data / "mouse1") / "day1_g0")
    write_openephys_session([_recording(duration_s=10.0, seed=2, num_units=4)], data / "mouse2" / "2026-01-02_10-00-00")
    write_nwb_recording(_recording(duration_s=10.0, seed=3, num_units=4), data / "mouse3" / "session.nwb")
    aind_session = data / "aind" / "ecephys_4_2026-01-04_10-00-00"
    aind_recording = _recording(duration_s=10.0, seed=4, num_units=4)
    write_openephys_session([aind_recording], aind_session / "ecephys" / "ecephys_clipped")
    aind_recording.save(folder=aind_session / "ecephys" / "ecephys_compressed"
                        / compressed_name(0, "Record Node 101#Neuropix-PXI-100.ProbeA-AP"), format="zarr")
    custom = _mkdir(data / "rig5" / "session1")
    custom_recording = _recording(duration_s=10.0, seed=5, num_units=4)
    write_binary_recording(custom_recording, file_paths=[custom / "traces.raw"], dtype="float32")
    probeinterface.write_probeinterface(custom / "probe.json", custom_recording.get_probegroup())
    (custom / "spikeline_input.yaml").write_text(
        "reader: read_binary\nreader_kwargs:\n  file_paths: [traces.raw]\n  sampling_frequency: 30000.0\n"
        "  num_channels: 16\n  dtype: float32\n  gain_to_uV: 1.0\n  offset_to_uV: 0.0\nprobe: probe.json\n")
    make_read_only(data)
    return data


SESSIONS = {"aind_ecephys_4_2026-01-04_10-00-00": "aind", "mouse1_day1_g0": "spikeglx",
            "mouse2_2026-01-02_10-00-00": "openephys", "mouse3_session": "nwb", "rig5_session1": "spikeinterface"}


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_discover_prints_sessions_without_running(lab_share):
    result = CliRunner().invoke(main, ["discover", str(lab_share)])
    assert result.exit_code == 0, result.output
    for name, fmt in SESSIONS.items():
        assert any(line.startswith(name) and fmt in line for line in result.output.splitlines()), name
    assert "5 session(s), 5 stream(s) to sort, 0 problem(s)" in result.output


def test_nested_mixed_sessions_run_with_one_command(lab_share, tmp_path):
    """Every format, discovered and sorted end to end (SpyKING CIRCUS 2, 10 s debug clips), with one command."""
    before = tree_checksums(lab_share)
    results = tmp_path / "results"
    config = quiet_config(spikesorting={"sorter": "spykingcircus2"}, dispatch={"debug": True, "debug_duration_s": 10.0},
                          preprocessing={"motion": "skip"})
    summary = run_pipeline(lab_share, results, config)
    assert summary.ok, summary
    assert sorted(p.name for p in results.iterdir() if p.is_dir()) == sorted(SESSIONS)
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
            "  num_channels: 16\n  dtype: float32\n  gain_to_uV: 1.0\n  offset_to_uV: 0.0\n")
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
    (session / "spikeline_input.yaml").write_text(spec.replace("  gain_to_uV: 1.0\n  offset_to_uV: 0.0\n", "")
                                                  + "probe: probe.json\n")
    (plan,) = plan_sessions(tmp_path, DispatchParams())
    assert "gives no gain to microvolts" in plan.problems[0]["error"]
    (session / "spikeline_input.yaml").write_text(spec.replace("read_binary", "read_binry"))
    (plan,) = plan_sessions(tmp_path, DispatchParams())
    assert "unknown reader 'read_binry'" in plan.problems[0]["error"]


def test_open_ephys_session_with_two_probes_and_missing_oebin(tmp_path):
    from spikeline.formats.openephys import write_openephys_session

    recordings = [_recording(duration_s=2.0, seed=s) for s in (1, 2)]
    write_openephys_session(recordings, tmp_path / "share" / "2026-01-01_mouse4")
    (plan,) = plan_sessions(tmp_path / "share", DispatchParams())
    assert plan.format == "openephys" and plan.name == "2026-01-01_mouse4" and not plan.problems
    assert [j["stream"] for j in plan.jobs] == ["block0_Neuropix-PXI-100.ProbeA-AP_recording1",
                                                 "block0_Neuropix-PXI-100.ProbeB-AP_recording1"]
    import spikeinterface as si

    reloaded = si.load(plan.jobs[0]["recording"])
    np.testing.assert_allclose(reloaded.get_channel_locations(), recordings[0].get_channel_locations())

    oebin = next((tmp_path / "share").rglob("structure.oebin"))
    oebin.unlink()
    (plan,) = plan_sessions(tmp_path / "share", DispatchParams())
    assert plan.jobs == [] and "has continuous data but no structure.oebin" in plan.problems[0]["error"]


def test_aind_session_reads_compressed_traces_with_the_clipped_probe(tmp_path):
    from spikeline.formats.aind import compressed_name
    from spikeline.formats.openephys import write_openephys_session

    recording = _recording(duration_s=2.0, seed=4)
    session = tmp_path / "ecephys_123456_2026-01-01_12-00-00"
    write_openephys_session([recording], session / "ecephys" / "ecephys_clipped")
    stream = "Record Node 101#Neuropix-PXI-100.ProbeA-AP"
    recording.save(folder=session / "ecephys" / "ecephys_compressed" / compressed_name(0, stream), format="zarr")
    (plan,) = plan_sessions(tmp_path, DispatchParams())
    assert plan.format == "aind" and plan.name == "ecephys_123456_2026-01-01_12-00-00"
    (job,) = plan.jobs
    assert any(f["path"].endswith(".zarr") for f in job["files"])
    import spikeinterface as si

    reloaded = si.load(job["recording"])
    assert reloaded.has_probe()
    np.testing.assert_allclose(reloaded.get_traces(end_frame=100), recording.get_traces(end_frame=100), atol=1e-3)


def test_gapped_timestamps_are_reset_or_refused(tmp_path):
    recording = _recording(duration_s=2.0)
    times = np.arange(recording.get_num_samples()) / 30000.0
    times[30000:] += 0.5  # a 500 ms gap after 1 s
    write_nwb_recording(recording, tmp_path / "gap.nwb", timestamps_s=times)
    (plan,) = plan_sessions(tmp_path, DispatchParams())
    (job,) = plan.jobs
    assert "1 gap(s) longer than 2 ms" in job["timestamps_reset"]
    import spikeinterface as si

    assert not si.load(job["recording"]).has_time_vector()
    (plan,) = plan_sessions(tmp_path, DispatchParams(timestamps="fail"))
    assert plan.jobs == [] and "has irregular timestamps" in plan.problems[0]["error"]
    assert "--reset-timestamps" in plan.problems[0]["error"]
