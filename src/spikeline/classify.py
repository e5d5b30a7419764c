"""Unit classification and curation suggestions, on top of SpikeInterface's curation module.

- :func:`bombcell_labels`: bombcell's rules (``spikeinterface.curation.bombcell_label_units``) on the metrics the
  postprocess step computed: ``noise`` (waveform shape), ``mua`` (spike quality), ``good``, ``non_soma``.
- :func:`merge_suggestions`: groups of units that may be one neuron (``compute_merge_unit_groups``), among the
  units that are not noise. They are suggestions for a person to review, never applied here.
- :func:`curation_document`: both, as a SpikeInterface curation file (format version 2) that
  ``spikeinterface.curation.apply_curation`` and spikeinterface-gui read.

Nothing here writes into the analyzer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import pandas as pd
    from spikeinterface import SortingAnalyzer

    from .config import BombcellParams, MergeSuggestionParams

#: Name of the label in curation.json, with the options spikeinterface-gui offers by default plus non_soma.
QUALITY_LABEL = "quality"
QUALITY_OPTIONS = ("good", "MUA", "noise", "non_soma")

#: bombcell label -> curation.json quality label.
_QUALITY_OF_BOMBCELL = {
    "good": "good",
    "mua": "MUA",
    "noise": "noise",
    "non_soma": "non_soma",
    "non_soma_good": "non_soma",
    "non_soma_mua": "non_soma",
}

NOISE_LABEL = "noise"


def bombcell_labels(analyzer: "SortingAnalyzer", params: "BombcellParams") -> "pd.Series":
    """Bombcell label of every unit of ``analyzer``.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With ``quality_metrics`` and ``template_metrics`` computed.
    params : BombcellParams
        Threshold overrides and whether to split non-somatic units.

    Returns
    -------
    pandas.Series
        ``noise``, ``mua``, ``good``, ``non_soma`` (or ``non_soma_good`` / ``non_soma_mua``), indexed by unit id.

    Raises
    ------
    ValueError
        When a metric that a threshold reads was not computed: bombcell would otherwise ignore that threshold
        with only a warning.
    """
    from spikeinterface.curation import bombcell_label_units
    from spikeinterface.curation.curation_tools import is_threshold_disabled

    thresholds = {  # a metric whose bounds are all disabled is dropped: it need not be computed
        section: {
            metric: bounds
            for metric, bounds in section_thresholds.items()
            if not all(is_threshold_disabled(bounds.get(side)) for side in ("greater", "less"))
        }
        for section, section_thresholds in params.resolved_thresholds().items()
    }
    metrics = analyzer.get_metrics_extension_data()
    missing = sorted({metric for section in thresholds.values() for metric in section} - set(metrics.columns))
    if missing:
        raise ValueError(
            f"bombcell thresholds read metric(s) {missing} that the postprocess step did not compute; add the "
            "extension or metric that produces them to postprocessing.extensions (see docs/metrics.md), or "
            "disable their bounds with null in curation.bombcell.thresholds"
        )
    labels = bombcell_label_units(external_metrics=metrics, thresholds=thresholds,
                                  split_non_somatic=params.split_non_somatic)
    return labels["bombcell_label"].loc[list(analyzer.unit_ids)]


def merge_suggestions(
    analyzer: "SortingAnalyzer", candidate_ids: Sequence, params: "MergeSuggestionParams", job_kwargs: dict[str, Any]
) -> list[list]:
    """Groups of units that the merge preset says may be one neuron, among ``candidate_ids``.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the extensions the preset needs (they are never computed here: a missing one raises).
    candidate_ids : sequence
        Units that may take part in a merge (e.g. those not labelled noise).
    params : MergeSuggestionParams
        Preset and step parameter overrides.
    job_kwargs : dict
        SpikeInterface job kwargs.

    Returns
    -------
    list of list
        Each group holds two or more unit ids, in unit order; pairs sharing a unit are joined into one group.
    """
    from spikeinterface.curation import compute_merge_unit_groups
    from spikeinterface.curation.curation_tools import resolve_merging_graph

    pairs = compute_merge_unit_groups(
        analyzer, preset=params.preset, steps_params=params.steps_params, resolve_graph=False,
        compute_needed_extensions=False, **job_kwargs,
    )
    candidates = set(candidate_ids)
    pairs = [pair for pair in pairs if set(pair) <= candidates]
    return resolve_merging_graph(analyzer.sorting, pairs)


def _plain(unit_id):
    """A unit id as JSON has it (numpy integers become int)."""
    return unit_id.item() if hasattr(unit_id, "item") else unit_id


def curation_document(
    unit_ids: Sequence, labels: "pd.Series | None", merge_groups: list[list], remove_noise: bool
) -> dict[str, Any]:
    """A SpikeInterface curation file (format version 2), validated by SpikeInterface's ``Curation`` model.

    Parameters
    ----------
    unit_ids : sequence
        Every unit of the curated sorting.
    labels : pandas.Series | None
        Bombcell label per unit id; ``None`` when units were not classified.
    merge_groups : list of list
        Suggested merges.
    remove_noise : bool
        List the units labelled noise under ``removed``.

    Returns
    -------
    dict
        JSON-able; ``spikeinterface.curation.apply_curation(sorting, document)`` applies it.
    """
    from spikeinterface.curation.curation_model import Curation

    document: dict[str, Any] = {"format_version": "2", "unit_ids": [_plain(u) for u in unit_ids]}
    if labels is not None:
        document["label_definitions"] = {
            QUALITY_LABEL: {"name": QUALITY_LABEL, "label_options": list(QUALITY_OPTIONS), "exclusive": True}
        }
        document["manual_labels"] = [
            {"unit_id": _plain(u), "labels": {QUALITY_LABEL: [_QUALITY_OF_BOMBCELL[labels[u]]]}} for u in unit_ids
        ]
        if remove_noise:
            document["removed"] = [_plain(u) for u in unit_ids if labels[u] == NOISE_LABEL]
    document["merges"] = [{"unit_ids": [_plain(u) for u in group]} for group in merge_groups]
    Curation(**document)  # raises on anything SpikeInterface would refuse
    return document
