"""The whole pipeline on a ground-truth SpikeGLX session: accuracy, outputs, provenance and reloadability."""

from __future__ import annotations

import json

import pytest

from conftest import TEST_DURATION_S, TEST_NUM_UNITS, tree_checksums
from spikeline.evaluate import evaluate_results
from spikeline.layout import ResultsLayout

STREAM = "block0_imec0.ap_recording1"

#: Kilosort4 (CPU) on the 60 s, 12-unit test session (12 of 12 measured here): at least this many ground-truth units at accuracy >= 0.8.
MIN_WELL_DETECTED = 11


def test_kilosort4_finds_the_ground_truth_units(ks4_run):
    session, results, summary = ks4_run
    assert summary.ok, summary
    assert [s.stream for s in summary.streams] == [STREAM]
    scores = evaluate_results(results, session.ground_truth_dir)[STREAM]
    assert scores["num_gt_units"] == TEST_NUM_UNITS
    assert scores["num_well_detected"] >= MIN_WELL_DETECTED, scores
    assert scores["num_false_positive_units"] <= 2, scores
    # units that pass QC are real units, found well
    assert scores["num_units_passing_qc"] >= MIN_WELL_DETECTED - 1, scores
    assert scores["qc_precision"] >= 0.9, scores


def test_raw_data_is_untouched(ks4_run, gt_session):
    session, checksums = gt_session
    assert tree_checksums(session.data_dir) == checksums


def test_outputs_reload_from_any_directory(ks4_run, in_other_directory):
    import spikeinterface as si

    _, results, _ = ks4_run
    layout = ResultsLayout(results)
    recording = si.load(layout.step_output("preprocess", STREAM))
    assert recording.get_num_channels() == 32 and recording.get_total_duration() == pytest.approx(TEST_DURATION_S)
    assert recording.has_probe()
    sorting = si.load(layout.step_output("sort", STREAM))
    analyzer = si.load(layout.step_output("postprocess", STREAM))
    assert analyzer.has_recording()
    expected = {"random_spikes", "waveforms", "templates", "noise_levels", "spike_amplitudes", "unit_locations",
                "correlograms", "template_similarity", "principal_components", "quality_metrics", "template_metrics"}
    assert expected <= set(analyzer.get_loaded_extension_names())
    assert analyzer.get_num_units() == sorting.get_num_units()
    curated = si.load(layout.step_output("curate", STREAM))
    assert {"default_qc", "qc_fail_reasons", "isi_violations_ratio", "presence_ratio", "amplitude_cutoff"} <= set(
        curated.get_property_keys())
    assert curated.get_num_units() <= sorting.get_num_units()


def test_default_qc_follows_the_thresholds(ks4_run):
    import pandas as pd

    _, results, _ = ks4_run
    table = pd.read_csv(ResultsLayout(results).unit_labels_csv(STREAM), index_col="unit_id")
    expected = (table.isi_violations_ratio < 0.5) & (table.presence_ratio > 0.8) & (table.amplitude_cutoff < 0.1)
    assert (table.default_qc == expected).all()
    failed = table[~table.default_qc]
    assert failed.qc_fail_reasons.str.contains("needs").all()


def test_processing_json_lists_every_step(ks4_run):
    _, results, _ = ks4_run
    processing = json.loads((results / "processing.json").read_text())
    steps = [(p["name"], p["stream"], p["status"]) for p in processing["data_processes"]]
    assert steps == [(name, STREAM, "ok") for name in ("preprocess", "sort", "postprocess", "curate", "visualize")] + [
        ("nwb", "block0_recording1", "ok")]  # the NWB step (on by default) runs once per block and recording
    for process in processing["data_processes"]:
        assert process["versions"]["spikeinterface"] == "0.105.3"
        assert process["start_date_time"] <= process["end_date_time"]
        assert process["parameters"] and process["duration_s"] > 0
    sort = processing["data_processes"][1]
    assert sort["versions"]["kilosort"] == "4.1.7"
    assert sort["parameters"]["sorter"] == "kilosort4"
    assert sort["outputs"]["drift_correction_off_reason"] == "32 channels < min_drift_channels=96"
    assert processing["dispatch"]["streams"][0]["probe_part_number"] == "NP1000"
    assert processing["config"]["curation"]["default_qc"]["presence_ratio"]["greater"] == 0.8


def test_rerun_redoes_nothing(ks4_run):
    from spikeline.pipeline import run_pipeline

    from conftest import quiet_config

    session, results, _ = ks4_run
    layout = ResultsLayout(results)
    before = {p: p.read_text() for p in layout.provenance_dir.rglob("*.json")}
    summary = run_pipeline(session.data_dir, results, quiet_config())
    assert summary.streams[0].steps_run == []
    assert summary.streams[0].steps_reused == ["preprocess", "sort", "postprocess", "curate", "visualize"]
    after = {p: p.read_text() for p in layout.provenance_dir.rglob("*.json") if p in before}
    assert {p: t for p, t in after.items() if p.name != "dispatch.json"} == {
        p: t for p, t in before.items() if p.name != "dispatch.json"}


def test_unit_types_agree_with_ground_truth(ks4_run):
    """Well-detected units are labelled SUA or MUA (not noise); units labelled SUA are well-detected units."""
    import spikeinterface as si
    from spikeinterface.comparison import compare_sorter_to_ground_truth

    session, results, _ = ks4_run
    curated = si.load(ResultsLayout(results).step_output("curate", STREAM))
    comparison = compare_sorter_to_ground_truth(session.ground_truth_sorting(STREAM), curated, exhaustive_gt=True)
    well = set(comparison.get_well_detected_units(well_detected_score=0.8))
    types = dict(zip(curated.unit_ids, curated.get_property("decoder_label")))
    assert sum(types[u] in ("SUA", "MUA") for u in well) >= 0.9 * len(well), types
    sua = [u for u, t in types.items() if t == "SUA"]
    assert sua and sum(u in well for u in sua) >= 0.9 * len(sua), types


def test_figures_are_listed_and_are_png(ks4_run):
    _, results, _ = ks4_run
    listing = json.loads((results / "visualization_output.json").read_text())
    figures = listing[STREAM]
    assert set(figures) == {"drift_map", "motion", "traces_raw", "traces_preprocessed", "unit_yield_by_depth"}
    for relative in figures.values():
        assert (results / relative).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
