"""SpikeGLX files: the writer round trip through SpikeInterface, and clear errors for broken inputs."""

from __future__ import annotations

import numpy as np
import pytest

from spikeline.errors import InputError
from spikeline.formats.spikeglx import (
    NP1_UV_PER_BIT,
    ap_bin_path,
    check_ap_stream,
    np1_probe,
    write_ap_stream,
)
from spikeline.steps.dispatch import discover_jobs
from spikeline.synthetic import make_spikeglx_session


@pytest.fixture
def small_recording():
    from spikeinterface.core import generate_ground_truth_recording

    recording, _ = generate_ground_truth_recording(
        durations=[2.0], sampling_frequency=30000.0, num_channels=16, num_units=4, probe=np1_probe(16), seed=1
    )
    return recording


def test_round_trip_reads_back_identically(small_recording, tmp_path):
    import spikeinterface.extractors as se

    bin_path = write_ap_stream(small_recording, ap_bin_path(tmp_path, "rt"))
    assert bin_path.name == "rt_g0_t0.imec0.ap.bin"
    assert bin_path.parent.name == "rt_g0_imec0" and bin_path.parent.parent.name == "rt_g0"

    stream_names, _ = se.get_neo_streams("spikeglx", tmp_path / "rt_g0")
    assert "imec0.ap" in stream_names  # the sync channel is its own stream, never sorted
    read = se.read_spikeglx(tmp_path / "rt_g0", stream_id="imec0.ap")

    expected_counts = np.round(small_recording.get_traces() / NP1_UV_PER_BIT).astype("int16")
    np.testing.assert_array_equal(read.get_traces(), expected_counts)
    assert read.get_dtype() == np.int16
    assert read.sampling_frequency == 30000.0
    assert read.get_num_samples() == small_recording.get_num_samples()
    np.testing.assert_allclose(read.get_channel_gains(), NP1_UV_PER_BIT)
    np.testing.assert_allclose(read.get_channel_locations(), small_recording.get_channel_locations())
    np.testing.assert_allclose(read.get_traces(return_in_uV=True), small_recording.get_traces(), atol=NP1_UV_PER_BIT)
    assert "inter_sample_shift" in read.get_property_keys()  # NP1.0 ADC multiplexing, from the probe catalogue
    assert read.get_probe().annotations["part_number"] == "NP1000"


def test_check_ap_stream_reports_geometry(small_recording, tmp_path):
    files = check_ap_stream(write_ap_stream(small_recording, ap_bin_path(tmp_path, "rt")))
    assert files.stream_id == "imec0.ap"
    assert files.num_saved_channels == 17  # 16 AP + sync
    assert files.duration_s == pytest.approx(2.0)


def test_missing_meta_is_a_clear_error(small_recording, tmp_path):
    bin_path = write_ap_stream(small_recording, ap_bin_path(tmp_path, "rt"))
    bin_path.with_suffix(".meta").unlink()
    with pytest.raises(InputError, match=r"has no metadata file: expected rt_g0_t0\.imec0\.ap\.meta"):
        check_ap_stream(bin_path)


def test_bin_size_mismatch_is_a_clear_error(small_recording, tmp_path):
    bin_path = write_ap_stream(small_recording, ap_bin_path(tmp_path, "rt"))
    with open(bin_path, "r+b") as f:
        f.truncate(bin_path.stat().st_size - 1000)
    with pytest.raises(InputError, match=r"bytes but its \.meta says fileSizeBytes=.*truncated"):
        check_ap_stream(bin_path)


def test_meta_without_required_fields(small_recording, tmp_path):
    bin_path = write_ap_stream(small_recording, ap_bin_path(tmp_path, "rt"))
    meta = bin_path.with_suffix(".meta")
    meta.write_text("\n".join(l for l in meta.read_text().splitlines() if not l.startswith("nSavedChans")))
    with pytest.raises(InputError, match=r"lacks required field\(s\) \['nSavedChans'\]"):
        check_ap_stream(bin_path)


def test_dispatch_keeps_good_streams_and_reports_bad_ones(tmp_path):
    session = make_spikeglx_session(tmp_path, num_probes=3, num_channels=16, duration_s=2.0, num_units=3)
    probe1 = next(session.data_dir.rglob("*.imec1.ap.bin"))
    probe1.with_suffix(".meta").unlink()  # missing .meta
    probe2 = next(session.data_dir.rglob("*.imec2.ap.bin"))
    with open(probe2, "ab") as f:  # size disagrees with the .meta
        f.write(b"\0" * 34)
    jobs, problems = discover_jobs(session.data_dir)
    assert [j["stream"] for j in jobs] == ["block0_imec0.ap_recording1"]
    assert jobs[0]["num_channels"] == 16 and jobs[0]["duration_s"] == pytest.approx(2.0)
    errors = " ".join(p["error"] for p in problems)
    assert "imec1.ap.bin has no metadata file" in errors
    assert "imec2.ap.bin is" in errors and "fileSizeBytes" in errors


def test_dispatch_on_folder_without_spikeglx(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing to sort")
    with pytest.raises(InputError, match=r"no recording was found under .*SpikeGLX \*\.ap\.bin"):
        discover_jobs(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        discover_jobs(tmp_path / "missing")


@pytest.mark.parametrize("part_number, num_shanks_used", [("NP2000", 1), ("NP2010", 2)])
def test_np2_round_trip_and_shanks(tmp_path, part_number, num_shanks_used):
    import spikeinterface.extractors as se
    from spikeinterface.core import generate_ground_truth_recording

    from spikeline.config import DispatchParams
    from spikeline.formats.spikeglx import PROBE_MODELS, neuropixels_probe, write_ap_stream
    from spikeline.steps.dispatch import plan_sessions

    probe = neuropixels_probe(16, part_number, num_shanks_used)
    recording, _ = generate_ground_truth_recording(durations=[1.0], sampling_frequency=30000.0, num_channels=16,
                                                   num_units=3, probe=probe, seed=2)
    write_ap_stream(recording, ap_bin_path(tmp_path, "np2"), part_number=part_number, num_shanks_used=num_shanks_used)
    read = se.read_spikeglx(tmp_path / "np2_g0", stream_id="imec0.ap")
    uv_per_bit = PROBE_MODELS[part_number].uv_per_bit
    np.testing.assert_allclose(read.get_channel_gains(), uv_per_bit)
    np.testing.assert_allclose(read.get_channel_locations(), recording.get_channel_locations())
    np.testing.assert_array_equal(read.get_traces(), np.round(recording.get_traces() / uv_per_bit).astype("int16"))
    assert len(np.unique(read.get_channel_groups())) == num_shanks_used

    (plan,) = plan_sessions(tmp_path / "np2_g0", DispatchParams(split_groups=True))
    assert len(plan.jobs) == num_shanks_used  # one job per shank
    assert {j["num_channels"] for j in plan.jobs} == {16 // num_shanks_used}
