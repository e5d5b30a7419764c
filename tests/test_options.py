"""Preprocessing, motion and sorter options: each has the effect it claims, on tiny synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import quiet_config
from spikeline.aind_args import aind_overrides
from spikeline.config import build_config
from spikeline.errors import ConfigError
from spikeline.formats.spikeglx import ap_bin_path, np1_probe, write_ap_stream
from spikeline.layout import ResultsLayout
from spikeline.pipeline import job_kwargs, run_pipeline
from spikeline.steps import STEPS, StepContext, execute_step
from spikeline.steps.dispatch import plan_sessions, write_jobs
from spikeline.synthetic import make_spikeglx_session

PREPROCESS = STEPS[0]


@pytest.fixture(scope="module")
def small_session(tmp_path_factory):
    return make_spikeglx_session(tmp_path_factory.mktemp("opts"), num_channels=32, duration_s=8.0, num_units=6, seed=8)


def preprocess(session_dir, results, **preprocessing):
    """Run dispatch and the preprocess step alone; return the saved recording and the step record."""
    import spikeinterface as si

    config = quiet_config(preprocessing={"motion": "skip", **preprocessing})
    layout = ResultsLayout(results)
    (plan,) = plan_sessions(session_dir, config.dispatch)
    write_jobs(layout, session_dir, plan)
    ctx = StepContext(stream=plan.jobs[0]["stream"], layout=layout, config=config, job_kwargs=job_kwargs(config))
    record = execute_step(PREPROCESS, ctx)
    return si.load(layout.step_output("preprocess", ctx.stream)), record


def test_destripe_and_bandpass_change_the_output(small_session, tmp_path):
    # keep every channel, so that the three outputs compare channel by channel
    keep = {"remove_bad_channels": False, "remove_out_channels": False}
    cmr, record = preprocess(small_session.data_dir, tmp_path / "cmr", **keep)
    assert record["outputs"]["applied"][-1] == "common_reference"
    destripe, record = preprocess(small_session.data_dir, tmp_path / "destripe", denoising="destripe", **keep)
    assert record["outputs"]["applied"][-1] == "highpass_spatial_filter"
    bandpass, record = preprocess(small_session.data_dir, tmp_path / "bandpass", filter_type="bandpass", **keep)
    assert "bandpass_filter" in record["outputs"]["applied"]
    window = dict(start_frame=60_000, end_frame=90_000)
    reference = cmr.get_traces(**window, return_in_uV=True)
    for other in (destripe, bandpass):
        difference = np.abs(other.get_traces(**window, return_in_uV=True) - reference)
        assert difference.mean() > 0.05 * np.abs(reference).mean()


def test_bad_channels_removed_or_interpolated(tmp_path):
    from spikeinterface.core import generate_ground_truth_recording

    recording, _ = generate_ground_truth_recording(durations=[6.0], sampling_frequency=30000.0, num_channels=32,
                                                   num_units=4, probe=np1_probe(32), seed=9)
    traces = recording.get_traces().copy()
    traces[:, [3, 17, 25]] = 0.0  # three dead channels
    from spikeinterface.core import NumpyRecording

    dead = NumpyRecording([traces], sampling_frequency=30000.0)
    dead.set_probe(np1_probe(32))
    write_ap_stream(dead, ap_bin_path(tmp_path / "raw", "dead"))
    dead_ids = ["imec0.ap#AP3", "imec0.ap#AP17", "imec0.ap#AP25"]
    labels_of = lambda record: record["outputs"]["channel_labels"]  # noqa: E731
    removed, record = preprocess(tmp_path / "raw" / "dead_g0", tmp_path / "removed", remove_out_channels=False)
    assert [labels_of(record)[c] for c in dead_ids] == ["dead"] * 3
    num_dead_or_noisy = sum(label in ("dead", "noise") for label in labels_of(record).values())
    assert removed.get_num_channels() == 32 - num_dead_or_noisy and "remove_bad_channels" in record["outputs"]["applied"]
    assert not set(dead_ids) & set(removed.channel_ids)
    interpolated, record = preprocess(tmp_path / "raw" / "dead_g0", tmp_path / "interp", interpolate_bad_channels=True,
                                      remove_out_channels=False)
    assert interpolated.get_num_channels() == 32 and "interpolate_bad_channels" in record["outputs"]["applied"]
    assert np.abs(interpolated.get_traces(channel_ids=["imec0.ap#AP17"], end_frame=30000)).max() > 0


def test_motion_compute_saves_a_loadable_estimate(small_session, tmp_path):
    import spikeinterface as si

    _, record = preprocess(small_session.data_dir, tmp_path / "compute", motion="compute",
                           motion_preset="rigid_fast", motion_temporal_bin_s=2.0)
    folder = ResultsLayout(tmp_path / "compute").step_output("preprocess", record["stream"]) / "motion"
    assert record["outputs"]["motion_saved"] and folder.is_dir()
    motion = si.load(folder / "motion")
    assert len(motion.displacement) == 1 and record["outputs"]["motion_max_displacement_um"] < 20.0


def test_unknown_motion_preset_lists_the_installed_ones():
    with pytest.raises(ConfigError, match=r"unknown motion preset 'dredge_fastest'.*'dredge_fast'"):
        build_config({"preprocessing": {"motion_preset": "dredge_fastest"}})


def test_kilosort25_without_matlab_fails_before_any_work(tmp_path):
    config = build_config({"spikesorting": {"sorter": "kilosort25"}})
    with pytest.raises(ConfigError, match=r"kilosort25 needs MATLAB.*container_image.*Kilosort4"):
        run_pipeline(tmp_path, tmp_path.parent / "never", config)
    assert not (tmp_path.parent / "never").exists()


def test_fast_runmode_drops_motion_and_pca(small_session, tmp_path):
    import spikeinterface as si

    config = quiet_config(runmode="fast", spikesorting={"sorter": "spykingcircus2"})
    assert config.preprocessing.motion == "skip"
    assert "principal_components" not in config.postprocessing.extensions
    assert build_config().preprocessing.motion == "compute"
    summary = run_pipeline(small_session.data_dir, tmp_path / "fast", config)
    assert summary.ok, summary
    stream = summary.streams[0].stream
    analyzer = si.load(tmp_path / "fast" / "postprocessed" / stream)
    assert not analyzer.has_extension("principal_components")
    assert "isolation_distance" not in analyzer.get_extension("quality_metrics").get_data().columns
    assert "bombcell_label" in si.load(tmp_path / "fast" / "curated" / stream).get_property_keys()


def test_aind_argument_strings_map_to_the_same_settings():
    overrides = aind_overrides(
        preprocessing_args="--denoising destripe --motion apply --motion-preset dredge --no-remove-bad-channels",
        spikesort_args="--skip-motion-correction --min-drift-channels 64",
        job_dispatch_args="--input spikeglx --debug --debug-duration 60 --no-split-segments",
    )
    config = build_config(overrides)
    assert config.preprocessing.denoising == "destripe" and config.preprocessing.motion == "apply"
    assert config.preprocessing.motion_preset == "dredge" and config.preprocessing.remove_bad_channels is False
    assert config.spikesorting.skip_motion_correction and config.spikesorting.min_drift_channels == 64
    assert config.dispatch.input == "spikeglx" and config.dispatch.debug and config.dispatch.debug_duration_s == 60
    assert config.dispatch.split_segments is False
    with pytest.raises(ConfigError, match=r"unrecognized arguments: --t-start.*Understood options"):
        aind_overrides(preprocessing_args="--t-start 10")


@pytest.mark.slow
@pytest.mark.parametrize("sorter", ["tridesclous2", "mountainsort5", "lupin"])
def test_other_sorters_run_end_to_end(small_session, tmp_path, sorter):
    summary = run_pipeline(small_session.data_dir, tmp_path / sorter,
                           quiet_config(spikesorting={"sorter": sorter}, preprocessing={"motion": "skip"}))
    assert summary.ok and summary.streams[0].num_units is not None


def test_motion_correction_recovers_units_on_a_drifting_recording(tmp_path):
    """Zigzag drift of +-25 um: motion apply finds more well-detected units than motion skip (sorter drift off).

    48 channels are below min_drift_channels, so SpyKING CIRCUS 2's own correction is off in both runs; only the
    preprocessing motion setting differs. Measured here: 5 of 12 (skip) against 8 of 12 (apply).
    """
    from spikeinterface.core import NumpyFolderSorting
    from spikeinterface.generation import generate_drifting_recording

    from spikeline.evaluate import evaluate_results

    duration_s = 40.0
    _, drifting, truth = generate_drifting_recording(
        num_units=12, duration=duration_s, probe=np1_probe(48), seed=1,
        generate_displacement_vector_kwargs={
            "displacement_sampling_frequency": 5.0, "drift_start_um": [0, 25], "drift_stop_um": [0, -25],
            "drift_step_um": 1, "motion_list": [{"drift_mode": "zigzag", "non_rigid_gradient": None,
                                                 "t_start_drift": 0.0, "t_end_drift": None,
                                                 "period_s": duration_s / 2}]},
        generate_sorting_kwargs={"firing_rates": (8.0, 12.0), "refractory_period_ms": 4.0})
    write_ap_stream(drifting, ap_bin_path(tmp_path / "raw", "drift"))
    NumpyFolderSorting.write_sorting(truth, tmp_path / "truth" / "block0_imec0.ap_recording1")
    well = {}
    for mode in ("skip", "apply"):
        config = quiet_config(spikesorting={"sorter": "spykingcircus2"}, preprocessing={"motion": mode})
        summary = run_pipeline(tmp_path / "raw" / "drift_g0", tmp_path / mode, config)
        assert summary.ok, summary
        (scores,) = evaluate_results(tmp_path / mode, tmp_path / "truth").values()
        well[mode] = scores["num_well_detected"]
    assert well["apply"] >= well["skip"] + 2, well
