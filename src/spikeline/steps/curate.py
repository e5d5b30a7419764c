"""Curate: deduplicate, flag ``default_qc`` from quality-metric thresholds, label units and suggest merges.

1. Duplicated spikes (same unit, within ``censored_period_ms``) are removed.
2. Redundant units (spike trains that agree above ``duplicate_threshold``) are removed, keeping one of each.
3. Every remaining unit gets ``default_qc`` (True when it passes every threshold; comparisons are strict and
   a NaN metric fails) and ``qc_fail_reasons`` (which thresholds it failed, with its values). Units are
   flagged, not removed.
4. Every remaining unit gets a ``bombcell_label`` (``noise``, ``mua``, ``good``, ``non_soma``), see
   :mod:`spikeline.classify`.
5. Merges are suggested among the units that are not noise; they are written, never applied.

Output: ``curated/<stream>/`` is a SpikeInterface sorting folder whose properties hold the labels and the
quality and template metrics, plus ``unit_labels.csv`` for spreadsheet users and ``curation.json`` (labels,
noise units as ``removed``, merge suggestions) in SpikeInterface's curation format, version 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import classify
from ..config import PipelineConfig, Threshold
from ..layout import CURATION_JSON, UNIT_LABELS_CSV
from ..provenance import atomic_write_json, file_sha256
from .base import Step, StepContext

if TYPE_CHECKING:
    import pandas as pd


def params(config: PipelineConfig) -> dict[str, Any]:
    resolved = config.step_params("curation")
    if config.curation.bombcell.enabled:  # the thresholds in force, library defaults included
        resolved["bombcell"]["resolved_thresholds"] = config.curation.bombcell.resolved_thresholds()
    model_folder = config.curation.classifier.model_folder
    if model_folder:  # a model retrained in the same folder must rerun curation
        model = Path(model_folder) / "best_model.skops"
        resolved["classifier"]["model_sha256"] = file_sha256(model) if model.exists() else None
    return resolved


def qc_flags(metrics: "pd.DataFrame", thresholds: dict[str, Threshold]) -> tuple[list[bool], list[str]]:
    """Apply thresholds to a metrics table.

    Parameters
    ----------
    metrics : pandas.DataFrame
        One row per unit, one column per metric.
    thresholds : dict of str to Threshold
        ``{metric: Threshold(less=..., greater=...)}``; strict comparisons, NaN or a missing column fails.

    Returns
    -------
    passed : list of bool
        Per unit, in row order.
    reasons : list of str
        Per unit, ``"; "``-joined failed thresholds (empty when it passed).
    """
    reasons: list[list[str]] = [[] for _ in range(len(metrics))]
    for metric, threshold in thresholds.items():
        values = metrics[metric] if metric in metrics.columns else [math.nan] * len(metrics)
        for i, value in enumerate(values):
            value = float(value)
            if threshold.less is not None and not value < threshold.less:
                reasons[i].append(f"{metric}={value:.4g} (needs < {threshold.less:g})")
            elif threshold.greater is not None and not value > threshold.greater:
                reasons[i].append(f"{metric}={value:.4g} (needs > {threshold.greater:g})")
    return [not r for r in reasons], ["; ".join(r) for r in reasons]


def run(ctx: StepContext, inputs: dict[str, Path], output: Path) -> dict[str, Any]:
    import numpy as np
    import spikeinterface as si
    import spikeinterface.curation as scur

    p = ctx.config.curation
    analyzer = si.load_sorting_analyzer(inputs["postprocess"])
    sorting = analyzer.sorting
    deduplicated = scur.remove_duplicated_spikes(sorting, **p.duplicated_spikes)
    num_duplicates = int(sorting.count_total_num_spikes() - deduplicated.count_total_num_spikes())

    kept_ids = list(scur.remove_redundant_units(analyzer, **p.redundant_units).unit_ids)
    redundant_ids = [u for u in analyzer.unit_ids if u not in set(kept_ids)]
    curated = deduplicated.select_units(kept_ids)

    metrics = analyzer.get_metrics_extension_data().loc[kept_ids]  # quality and template metrics
    passed, reasons = qc_flags(metrics, p.default_qc)
    labels = classify.bombcell_labels(analyzer, p.bombcell).loc[kept_ids] if p.bombcell.enabled else None
    merge_groups: list[list] = []
    if p.merge_suggestions.enabled:
        candidates = kept_ids if labels is None else [u for u in kept_ids if labels[u] != classify.NOISE_LABEL]
        merge_groups = classify.merge_suggestions(analyzer, candidates, p.merge_suggestions, ctx.job_kwargs)

    if p.classifier.model_folder:
        types = classify.unit_types_from_model(analyzer, kept_ids, p.classifier.model_folder, p.classifier.trust_model)
    elif labels is not None:
        types = classify.unit_types_from_bombcell(labels)
    else:
        types = None

    curated.set_property("default_qc", np.array(passed, dtype=bool))
    curated.set_property("qc_fail_reasons", np.array(reasons, dtype=str))
    if labels is not None:
        curated.set_property("bombcell_label", labels.to_numpy(dtype=str))
    if types is not None:
        curated.set_property("decoder_label", types["decoder_label"].to_numpy(dtype=str))
        curated.set_property("decoder_probability", types["decoder_probability"].to_numpy(dtype=float))
    for column in metrics.columns:
        curated.set_property(column, metrics[column].to_numpy(dtype=float))
    curated.save(folder=output, format="numpy_folder")

    table = metrics.copy()
    if labels is not None:
        table.insert(0, "bombcell_label", labels.to_numpy(dtype=str))
    if types is not None:
        table.insert(0, "decoder_probability", types["decoder_probability"].to_numpy(dtype=float))
        table.insert(0, "decoder_label", types["decoder_label"].to_numpy(dtype=str))
    table.insert(0, "qc_fail_reasons", reasons)
    table.insert(0, "default_qc", passed)
    table.index.name = "unit_id"
    table.to_csv(output / UNIT_LABELS_CSV)
    document = classify.curation_document(kept_ids, labels, merge_groups, p.remove_noise_in_curation)
    atomic_write_json(output / CURATION_JSON, document)
    return {
        "num_units_in": int(analyzer.get_num_units()),
        "num_duplicated_spikes_removed": num_duplicates,
        "redundant_unit_ids": [str(u) for u in redundant_ids],
        "num_units": len(kept_ids),
        "num_units_passing_qc": int(sum(passed)),
        "num_units_per_bombcell_label": {} if labels is None else {str(k): int(v) for k, v in
                                                                   labels.value_counts().items()},
        "merge_suggestions": [[str(u) for u in group] for group in merge_groups],
        "num_units_per_decoder_label": {} if types is None else {
            str(k): int(v) for k, v in types["decoder_label"].value_counts().items()},
        "classifier": "model" if p.classifier.model_folder else ("bombcell rules" if types is not None else None),
    }


STEP = Step(name="curate", inputs=("postprocess",), params=params, run=run)
