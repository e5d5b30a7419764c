"""Accuracy against ground truth: how many ground-truth units the pipeline found, and how cleanly.

Uses SpikeInterface's ground-truth comparison (Hungarian matching of spike trains within 0.4 ms). A unit is
*well detected* when its accuracy (matches / (matches + misses + false positives)) is at least 0.8.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .layout import ResultsLayout

WELL_DETECTED_SCORE = 0.8


def compare_to_ground_truth(gt_sorting, sorting, well_detected_score: float = WELL_DETECTED_SCORE) -> dict[str, Any]:
    """Score one sorting against its ground truth.

    Parameters
    ----------
    gt_sorting : BaseSorting
        Ground truth (exhaustive).
    sorting : BaseSorting
        The curated sorting; a ``default_qc`` property, if present, is scored too.
    well_detected_score : float, default: 0.8
        Accuracy from which a ground-truth unit counts as well detected.

    Returns
    -------
    dict
        ``num_gt_units``, ``num_well_detected``, ``well_detected_fraction``, ``mean_accuracy``,
        ``mean_precision``, ``mean_recall``, ``num_units``, ``num_false_positive_units``,
        ``num_redundant_units``, ``accuracy_per_gt_unit`` (ground-truth unit id, as a string, to its accuracy)
        and, with ``default_qc``, ``num_units_passing_qc`` and ``qc_precision`` (fraction of QC-passing units
        matched to a well-detected ground-truth unit); with ``decoder_label``, ``num_sua_units`` and
        ``sua_precision`` (the same fraction for units labelled SUA).
    """
    from spikeinterface.comparison import compare_sorter_to_ground_truth

    comparison = compare_sorter_to_ground_truth(gt_sorting, sorting, exhaustive_gt=True)
    performance = comparison.get_performance()  # one row per ground-truth unit
    num_well = int((performance["accuracy"].astype(float) >= well_detected_score).sum())
    # sorted units whose ground-truth match is well detected
    well_sorted_units = set(comparison.get_well_detected_units(well_detected_score=well_detected_score))
    scores = {
        "num_gt_units": int(gt_sorting.get_num_units()),
        "num_well_detected": num_well,
        "well_detected_fraction": round(num_well / max(1, gt_sorting.get_num_units()), 4),
        "mean_accuracy": round(float(performance["accuracy"].mean()), 4),
        "mean_precision": round(float(performance["precision"].mean()), 4),
        "mean_recall": round(float(performance["recall"].mean()), 4),
        "num_units": int(sorting.get_num_units()),
        "num_false_positive_units": len(comparison.get_false_positive_units()),
        "num_redundant_units": len(comparison.get_redundant_units()),
        "accuracy_per_gt_unit": {str(u): round(float(a), 4) for u, a in performance["accuracy"].items()},
    }
    if "default_qc" in sorting.get_property_keys():
        passing = [u for u, ok in zip(sorting.unit_ids, sorting.get_property("default_qc")) if ok]
        good = [u for u in passing if u in well_sorted_units]
        scores["num_units_passing_qc"] = len(passing)
        scores["qc_precision"] = round(len(good) / len(passing), 4) if passing else None
    if "decoder_label" in sorting.get_property_keys():
        sua = [u for u, label in zip(sorting.unit_ids, sorting.get_property("decoder_label")) if label == "SUA"]
        scores["num_sua_units"] = len(sua)
        scores["sua_precision"] = round(len([u for u in sua if u in well_sorted_units]) / len(sua), 4) if sua else None
    return scores


def evaluate_results(results_dir: str | Path, ground_truth_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Score every curated stream that has a ground-truth sorting folder of the same name.

    Parameters
    ----------
    results_dir : str | Path
        A results folder written by ``spikeline run``.
    ground_truth_dir : str | Path
        Folder with one SpikeInterface sorting folder per stream name (as written by
        :func:`spikeline.synthetic.make_spikeglx_session`).

    Returns
    -------
    dict
        Stream name to scores (see :func:`compare_to_ground_truth`).
    """
    import spikeinterface as si

    layout = ResultsLayout(Path(results_dir))
    scores = {}
    for stream in layout.streams():
        gt_folder = Path(ground_truth_dir) / stream
        curated = layout.step_output("curate", stream)
        if gt_folder.is_dir() and curated.is_dir():
            scores[stream] = compare_to_ground_truth(si.load(gt_folder), si.load(curated))
    return scores
