"""Curate: deduplicate, then flag ``default_qc`` per unit from quality-metric thresholds.

1. Duplicated spikes (same unit, within ``censored_period_ms``) are removed.
2. Redundant units (spike trains that agree above ``duplicate_threshold``) are removed, keeping one of each.
3. Every remaining unit gets ``default_qc`` (True when it passes every threshold; comparisons are strict and
   a NaN metric fails) and ``qc_fail_reasons`` (which thresholds it failed, with its values). Units are
   flagged, not removed.

Output: ``curated/<stream>/`` is a SpikeInterface sorting folder whose properties hold the labels and the
quality metrics, plus ``unit_labels.csv`` for spreadsheet users.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import PipelineConfig, Threshold
from ..layout import UNIT_LABELS_CSV
from .base import Step, StepContext

if TYPE_CHECKING:
    import pandas as pd


def params(config: PipelineConfig) -> dict[str, Any]:
    return config.step_params("curation")


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

    metrics = analyzer.get_extension("quality_metrics").get_data().loc[kept_ids]
    passed, reasons = qc_flags(metrics, p.default_qc)
    curated.set_property("default_qc", np.array(passed, dtype=bool))
    curated.set_property("qc_fail_reasons", np.array(reasons, dtype=str))
    for column in metrics.columns:
        curated.set_property(column, metrics[column].to_numpy(dtype=float))
    curated.save(folder=output, format="numpy_folder")

    table = metrics.copy()
    table.insert(0, "qc_fail_reasons", reasons)
    table.insert(0, "default_qc", passed)
    table.index.name = "unit_id"
    table.to_csv(output / UNIT_LABELS_CSV)
    return {
        "num_units_in": int(analyzer.get_num_units()),
        "num_duplicated_spikes_removed": num_duplicates,
        "redundant_unit_ids": [str(u) for u in redundant_ids],
        "num_units": len(kept_ids),
        "num_units_passing_qc": int(sum(passed)),
    }


STEP = Step(name="curate", inputs=("postprocess",), params=params, run=run)
