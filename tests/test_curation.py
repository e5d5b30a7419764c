"""Bombcell labels, merge suggestions and curation.json, on a ground-truth sorting with one unit cut in two.

The postprocess and curate steps run for real on SpikeInterface's ground-truth generator (16 channels, 30 s),
without a sorter: the "sorting" is the ground truth with half the spikes of unit 2, drawn at random, moved to
a new unit 6. The only merge worth suggesting is therefore [2, 6].
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import quiet_config
from spikeline import classify
from spikeline.config import BombcellParams, build_config
from spikeline.errors import ConfigError
from spikeline.layout import CURATION_JSON, UNIT_LABELS_CSV, ResultsLayout
from spikeline.pipeline import job_kwargs
from spikeline.steps import StepContext, curate, postprocess

SPLIT_UNIT, SPLIT_PART = 2, 6


def _context(root, **sections) -> StepContext:
    config = quiet_config(**sections)
    return StepContext(stream="s", layout=ResultsLayout(root / "results"), config=config,
                       job_kwargs=job_kwargs(config))


@pytest.fixture(scope="module")
def split_unit(tmp_path_factory):
    """Postprocessed and curated folders of a ground-truth sorting in which one unit was cut in two."""
    import spikeinterface as si

    root = tmp_path_factory.mktemp("split_unit")
    recording, truth = si.generate_ground_truth_recording(
        durations=[30.0], num_channels=16, num_units=6, seed=7,
        generate_sorting_kwargs=dict(firing_rates=15.0, refractory_period_ms=4.0),
    )
    spikes = truth.to_spike_vector()
    labels = spikes["unit_index"].copy()
    in_unit = np.flatnonzero(labels == SPLIT_UNIT)
    labels[np.random.default_rng(0).choice(in_unit, size=in_unit.size // 2, replace=False)] = SPLIT_PART
    sorting = si.NumpySorting.from_samples_and_labels([spikes["sample_index"]], [labels],
                                                      recording.sampling_frequency)
    assert list(sorting.unit_ids) == list(range(truth.get_num_units() + 1))
    recording.save(folder=root / "recording", n_jobs=1, progress_bar=False)
    sorting.save(folder=root / "sorting")

    ctx = _context(root)
    postprocess.run(ctx, {"preprocess": root / "recording", "sort": root / "sorting"}, root / "postprocessed")
    outputs = curate.run(ctx, {"postprocess": root / "postprocessed"}, root / "curated")
    return root, outputs


def test_the_split_unit_is_the_only_merge_suggestion(split_unit):
    root, outputs = split_unit
    assert outputs["merge_suggestions"] == [[str(SPLIT_UNIT), str(SPLIT_PART)]]
    document = json.loads((root / "curated" / CURATION_JSON).read_text())
    assert document["merges"] == [{"unit_ids": [SPLIT_UNIT, SPLIT_PART]}]


def test_bombcell_labels_match_spikeinterface(split_unit):
    import spikeinterface as si
    from spikeinterface.curation import bombcell_label_units

    root, outputs = split_unit
    oracle = bombcell_label_units(si.load_sorting_analyzer(root / "postprocessed"))["bombcell_label"]
    curated = si.load(root / "curated")
    assert list(curated.get_property("bombcell_label")) == list(oracle.loc[curated.unit_ids])
    assert outputs["num_units_per_bombcell_label"] == {k: int(v) for k, v in oracle.value_counts().items()}
    table = pd.read_csv(root / "curated" / UNIT_LABELS_CSV, index_col="unit_id")
    assert list(table["bombcell_label"]) == list(oracle.loc[curated.unit_ids])
    for column in ("exp_decay", "peak_to_trough_duration", "drift_ptp", "isolation_distance"):  # bombcell's inputs
        assert column in table.columns
        assert column in curated.get_property_keys()


def test_curation_json_applies_with_spikeinterface(split_unit):
    import spikeinterface as si
    from spikeinterface.curation import apply_curation, load_curation

    root, _ = split_unit
    curation = load_curation(root / "curated" / CURATION_JSON)
    curated = si.load(root / "curated")
    noise = [u for u, label in zip(curated.unit_ids, curated.get_property("bombcell_label")) if label == "noise"]
    assert list(curation.removed) == noise
    applied = apply_curation(curated, curation)
    assert applied.get_num_units() == curated.get_num_units() - len(noise) - 1  # 2 and 6 become one unit
    quality = dict(zip(applied.unit_ids, applied.get_property("quality")))
    for unit_id, label in zip(curated.unit_ids, curated.get_property("bombcell_label")):
        if unit_id in quality:
            assert quality[unit_id] == {"good": "good", "mua": "MUA", "non_soma": "non_soma"}[label]


def test_classification_can_be_turned_off(split_unit, tmp_path):
    import spikeinterface as si

    root, _ = split_unit
    ctx = _context(tmp_path, curation={"bombcell": {"enabled": False}, "merge_suggestions": {"enabled": False}})
    outputs = curate.run(ctx, {"postprocess": root / "postprocessed"}, tmp_path / "curated")
    assert outputs["merge_suggestions"] == [] and outputs["num_units_per_bombcell_label"] == {}
    assert "bombcell_label" not in si.load(tmp_path / "curated").get_property_keys()
    document = json.loads((tmp_path / "curated" / CURATION_JSON).read_text())
    assert "manual_labels" not in document and "removed" not in document and document["merges"] == []


def test_a_threshold_on_a_metric_not_computed_is_an_error_unless_disabled(split_unit):
    import spikeinterface as si

    root, _ = split_unit
    analyzer = si.load_sorting_analyzer(root / "postprocessed")
    with pytest.raises(ValueError, match=r"\['nn_isolation'\].*postprocessing.extensions"):
        classify.bombcell_labels(analyzer, BombcellParams(thresholds={"mua": {"nn_isolation": {"greater": 0.9}}}))
    disabled = BombcellParams(thresholds={"mua": {"isolation_distance": {"greater": None}, "l_ratio": {"less": None},
                                                  "nn_isolation": {"greater": None, "less": None}}})
    labels = classify.bombcell_labels(analyzer, disabled)
    assert list(labels.index) == list(analyzer.unit_ids)


def test_every_default_metric_column_is_documented(split_unit):
    import spikeinterface as si

    root, _ = split_unit
    docs = (Path(__file__).parents[1] / "docs" / "metrics.md").read_text()
    columns = si.load_sorting_analyzer(root / "postprocessed").get_metrics_extension_data().columns
    assert [c for c in columns if f"`{c}`" not in docs] == []


def test_curate_parameters_record_the_thresholds_in_force():
    from spikeinterface.curation import bombcell_get_default_thresholds

    default = curate.params(build_config())
    assert default["bombcell"]["resolved_thresholds"] == bombcell_get_default_thresholds()
    changed = curate.params(build_config({"curation": {"bombcell": {"thresholds": {"mua": {"snr": {"greater": 3}}}}}}))
    assert changed["bombcell"]["resolved_thresholds"]["mua"]["snr"] == {"greater": 3, "less": None}
    assert changed != default  # so a changed threshold reruns curate


@pytest.mark.parametrize(
    "curation, message",
    [
        ({"bombcell": {"thresholds": {"noisy": {}}}}, "unknown bombcell section 'noisy'; valid sections are"),
        ({"bombcell": {"thresholds": {"mua": {"isi_violation": {"less": 1}}}}},
         "unknown metric 'isi_violation'; valid metric columns are: [^\n]*'isi_violations_ratio'"),
        ({"bombcell": {"thresholds": {"mua": {"snr": {"min": 1}}}}}, r"unknown key\(s\) \['min'\]"),
        ({"merge_suggestions": {"preset": "lussac"}}, "unknown merge preset 'lussac'; valid presets are"),
        # AIND's default_params.json passes this misspelt name, which SpikeInterface silently ignores
        ({"merge_suggestions": {"steps_params": {"template_similarity": {"templates_diff": 0.35}}}},
         r"unknown parameter\(s\) \['templates_diff'\]; valid parameters are: \['similarity_method', "
         r"'template_diff_thresh'\]"),
        ({"merge_suggestions": {"steps_params": {"knn": {"k_nn": 5}}}}, "step 'knn' is not used by preset 'slay'"),
    ],
)
def test_curation_config_errors_name_the_valid_choices(curation, message):
    with pytest.raises(ConfigError, match=message):
        build_config({"curation": curation})


def test_curation_document_is_valid_for_string_and_integer_ids():
    labels = pd.Series({0: "good", 1: "noise", 2: "non_soma_mua"})
    document = classify.curation_document(np.array([0, 1, 2]), labels, [], remove_noise=True)
    assert document["removed"] == [1] and isinstance(document["unit_ids"][0], int)
    assert [m["labels"]["quality"] for m in document["manual_labels"]] == [["good"], ["noise"], ["non_soma"]]
    document = classify.curation_document(["a", "b"], pd.Series({"a": "noise", "b": "mua"}), [["a", "b"]],
                                          remove_noise=False)
    assert "removed" not in document and document["merges"] == [{"unit_ids": ["a", "b"]}]


def test_default_pipeline_labels_units_and_writes_curation_json(ks4_run):
    import spikeinterface as si
    from spikeinterface.curation import load_curation

    _, results, summary = ks4_run
    stream = summary.streams[0].stream
    layout = ResultsLayout(results)
    record = json.loads(layout.step_record("curate", stream).read_text())
    counts = record["outputs"]["num_units_per_bombcell_label"]
    assert sum(counts.values()) == record["outputs"]["num_units"] > 0
    curated = si.load(layout.step_output("curate", stream))
    assert set(curated.get_property("bombcell_label")) <= {"good", "mua", "noise", "non_soma"}
    curation = load_curation(layout.curation_json(stream))
    assert list(curation.unit_ids) == list(curated.unit_ids)
    assert record["parameters"]["bombcell"]["resolved_thresholds"]["mua"]["snr"]["greater"] is not None
