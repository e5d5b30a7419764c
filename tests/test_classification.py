"""Unit types (decoder_label: noise / MUA / SUA) on ground truth with injected noise units, and a trained model.

The recording is SpikeInterface's ground truth (16 channels, 60 s, 8 units) plus a stimulation artefact: a
biphasic 1 ms pulse of 400 uV on every channel, twice a second. The "sorting" is the ground truth plus two
noise units a sorter could produce: one firing at the artefact, one firing at random times. The postprocess
and curate steps then run for real, without a sorter.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import quiet_config
from spikeline.cli import main
from spikeline.layout import ResultsLayout
from spikeline.pipeline import job_kwargs
from spikeline.steps import StepContext, curate, postprocess

FS = 30000.0
NUM_GT_UNITS = 8
ARTEFACT_UNIT, RANDOM_UNIT = NUM_GT_UNITS, NUM_GT_UNITS + 1


def _ctx(root, **sections):
    config = quiet_config(**sections)
    return StepContext(stream="s", layout=ResultsLayout(root / "results"), config=config, job_kwargs=job_kwargs(config))


@pytest.fixture(scope="module")
def injected(tmp_path_factory):
    import spikeinterface as si
    from spikeinterface.core import NumpyRecording

    root = tmp_path_factory.mktemp("injected")
    recording, truth = si.generate_ground_truth_recording(
        durations=[60.0], sampling_frequency=FS, num_channels=16, num_units=NUM_GT_UNITS, seed=11,
        generate_sorting_kwargs=dict(firing_rates=10.0, refractory_period_ms=4.0))
    traces = recording.get_traces().copy()
    onsets = np.arange(int(0.25 * FS), traces.shape[0] - 100, int(0.5 * FS))
    pulse = np.r_[np.full(15, 400.0), np.full(15, -400.0)].astype("float32")
    for onset in onsets:
        traces[onset:onset + 30] += pulse[:, None]
    with_artefact = NumpyRecording([traces], sampling_frequency=FS, channel_ids=recording.channel_ids)
    with_artefact.set_probe(recording.get_probe())
    with_artefact.set_channel_gains(1.0)
    with_artefact.set_channel_offsets(0.0)
    rng = np.random.default_rng(0)
    random_times = np.sort(rng.choice(traces.shape[0] - 200, size=600, replace=False)) + 100
    spikes = truth.to_spike_vector()
    samples = np.concatenate([spikes["sample_index"], onsets + 10, random_times])
    labels = np.concatenate([spikes["unit_index"], np.full(onsets.size, ARTEFACT_UNIT), np.full(600, RANDOM_UNIT)])
    order = np.argsort(samples, kind="stable")
    sorting = si.NumpySorting.from_samples_and_labels([samples[order]], [labels[order]], FS)
    with_artefact.save(folder=root / "recording", n_jobs=1, progress_bar=False)
    sorting.save(folder=root / "sorting")
    ctx = _ctx(root, curation={"merge_suggestions": {"enabled": False}})
    postprocess.run(ctx, {"preprocess": root / "recording", "sort": root / "sorting"}, root / "postprocessed")
    curate.run(ctx, {"postprocess": root / "postprocessed"}, root / "curated")
    return root


def test_rules_label_injected_noise_units_noise_and_real_units_not(injected):
    import spikeinterface as si

    curated = si.load(injected / "curated")
    types = dict(zip(curated.unit_ids, curated.get_property("decoder_label")))
    assert types[ARTEFACT_UNIT] == "noise" and types[RANDOM_UNIT] == "noise"
    # real units a sorter could find (SNR >= 5; the generator also places units too far from the probe to see)
    snr = dict(zip(curated.unit_ids, curated.get_property("snr")))
    visible = [u for u in range(NUM_GT_UNITS) if snr[u] >= 5]
    assert len(visible) >= 6
    assert sum(types[u] in ("SUA", "MUA") for u in visible) >= 0.8 * len(visible), types
    assert np.isnan(curated.get_property("decoder_probability")).all()  # rules give no probability


def test_a_trained_model_is_loaded_and_applied(injected, tmp_path):
    import spikeinterface as si

    from spikeline import classify

    analyzer = si.load_sorting_analyzer(injected / "postprocessed")
    truth_types = ["SUA"] * NUM_GT_UNITS + ["noise", "noise"]
    # a small training set: the analyzer twice (labels as the ground truth says)
    summary = classify.train_unit_classifier([analyzer, analyzer], [truth_types, truth_types], tmp_path / "model")
    assert summary["labels"] == {"SUA": 2 * NUM_GT_UNITS, "noise": 4}
    assert (tmp_path / "model" / "best_model.skops").exists()

    ctx = _ctx(injected, curation={"merge_suggestions": {"enabled": False},
                                   "classifier": {"model_folder": str(tmp_path / "model")}})
    outputs = curate.run(ctx, {"postprocess": injected / "postprocessed"}, tmp_path / "curated")
    assert outputs["classifier"] == "model"
    curated = si.load(tmp_path / "curated")
    types = dict(zip(curated.unit_ids, curated.get_property("decoder_label")))
    assert types[ARTEFACT_UNIT] == "noise" and types[RANDOM_UNIT] == "noise"
    assert all(0.0 <= p <= 1.0 for p in curated.get_property("decoder_probability"))
    # the analyzer on disk is not touched by the predictions
    assert "classifier_label" not in si.load_sorting_analyzer(injected / "postprocessed").sorting.get_property_keys()


def test_classifier_train_command(injected, tmp_path):
    """`spikeline classifier train` reads labels from curated results (here the rules' decoder_label)."""
    results = tmp_path / "results"
    (results / "postprocessed").mkdir(parents=True)
    (results / "curated").mkdir()
    import shutil

    import spikeinterface as si

    shutil.copytree(injected / "postprocessed", results / "postprocessed" / "s")
    # a person's labels, as a curated-sorting property
    curated = si.load(injected / "curated")
    curated.set_property("manual", ["good" if u < NUM_GT_UNITS else "noise" for u in curated.unit_ids])
    curated.save(folder=results / "curated" / "s")
    command = ["classifier", "train", str(results), "--output", str(tmp_path / "model"), "--labels-from", "manual"]
    result = CliRunner().invoke(main, command)
    assert result.exit_code != 0 and "with 3 or more units each" in result.output  # two noise units are too few

    shutil.copytree(results / "postprocessed" / "s", results / "postprocessed" / "t")  # a second labelled stream
    shutil.copytree(results / "curated" / "s", results / "curated" / "t")
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    assert "trained on 20 units {'SUA': 16, 'noise': 4}" in result.output
    assert (tmp_path / "model" / "best_model.skops").exists()
