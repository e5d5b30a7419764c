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


#: Fewest units of each type a training set needs (cross-validation splits each type three ways).
MIN_UNITS_PER_TYPE = 3
#: Unit types written as ``decoder_label`` (the AIND pipeline's column).
UNIT_TYPES = ("noise", "MUA", "SUA")
#: bombcell label -> unit type, for the rules-based classification (non-somatic units are counted as MUA).
_UNIT_TYPE_OF_BOMBCELL = {"good": "SUA", "mua": "MUA", "noise": "noise", "non_soma": "MUA", "non_soma_good": "MUA",
                          "non_soma_mua": "MUA"}


def unit_types_from_bombcell(labels: "pd.Series") -> "pd.DataFrame":
    """``decoder_label`` (noise / MUA / SUA) from bombcell labels, ``decoder_probability`` NaN (rules give none)."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame({"decoder_label": [_UNIT_TYPE_OF_BOMBCELL[str(label)] for label in labels],
                         "decoder_probability": np.nan}, index=labels.index)


def unit_types_from_model(analyzer: "SortingAnalyzer", unit_ids: Sequence, model_folder: str,
                          trust_model: bool = True) -> "pd.DataFrame":
    """``decoder_label`` and ``decoder_probability`` from a local model folder (SpikeInterface model-based labels).

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the metrics the model was trained on.
    unit_ids : sequence
        Units to label.
    model_folder : str
        Folder with ``best_model.skops`` and ``model_info.json``.
    trust_model : bool, default: True
        Passed to SpikeInterface (skops trust check).

    Returns
    -------
    pandas.DataFrame
        Columns ``decoder_label``, ``decoder_probability``, indexed by unit id. Predictions are never written into
        the analyzer.
    """
    import pandas as pd
    from spikeinterface.curation import model_based_label_units

    predictions = model_based_label_units(analyzer, unit_ids=list(unit_ids), model_folder=model_folder,
                                          trust_model=trust_model, set_predictions_as_properties=False)
    labels = [str(label) for label in predictions["prediction"]]
    unknown = sorted(set(labels) - set(UNIT_TYPES))
    if unknown:
        raise ValueError(f"the model in {model_folder} predicts {unknown}; spikeline expects {list(UNIT_TYPES)}: "
                         "train it with `spikeline classifier train`")
    return pd.DataFrame({"decoder_label": labels, "decoder_probability": predictions["probability"].to_numpy()},
                        index=list(unit_ids))


def train_unit_classifier(analyzers: list["SortingAnalyzer"], labels: list[list[str]], folder, seed: int = 0,
                          **job_kwargs) -> dict[str, Any]:
    """Train a noise / MUA / SUA classifier on labelled analyzers (SpikeInterface's ``train_model``).

    Parameters
    ----------
    analyzers : list of SortingAnalyzer
        With quality and template metrics.
    labels : list of list of str
        One label (noise / MUA / SUA) per unit of each analyzer.
    folder : path-like
        Where the model is written (``best_model.skops``, ``model_info.json``, ``model_accuracies.csv`` ...).
    seed : int, default: 0
        For the train/test split and the classifiers.

    Returns
    -------
    dict
        ``num_units``, ``labels`` (counts), ``metric_names`` and the best balanced accuracy.
    """
    import collections
    import json
    from pathlib import Path

    import pandas as pd
    from spikeinterface.curation import train_model

    flat = [label for unit_labels in labels for label in unit_labels]
    unknown = sorted(set(flat) - set(UNIT_TYPES))
    if unknown:
        raise ValueError(f"training labels must be in {list(UNIT_TYPES)}; got {unknown}")
    counts = collections.Counter(flat)
    too_few = {label: n for label, n in counts.items() if n < MIN_UNITS_PER_TYPE}
    if len(counts) < 2 or too_few:
        raise ValueError(f"training needs at least two unit types with {MIN_UNITS_PER_TYPE} or more units each; "
                         f"the labels have {dict(counts)}. Label more units, or relabel the rare type.")
    # one imputation, one scaling and a short randomized search: seconds, not SpikeInterface's default grid
    train_model(mode="analyzers", analyzers=analyzers, labels=labels, folder=folder, overwrite=True, seed=seed,
                classifiers=["RandomForestClassifier"], imputation_strategies=["median"],
                scaling_techniques=["standard_scaler"],
                search_kwargs={"cv": 3, "scoring": "balanced_accuracy", "n_iter": 10}, verbose=False, **job_kwargs)
    folder = Path(folder)
    accuracies = pd.read_csv(folder / "model_accuracies.csv")
    info = json.loads((folder / "model_info.json").read_text())
    return {"num_units": len(flat), "labels": dict(collections.Counter(flat)),
            "metric_names": info.get("metric_params", {}) and sorted(info.get("metric_params", {})),
            "balanced_accuracy": float(accuracies.iloc[0].get("balanced_accuracy", float("nan")))}


#: Labels accepted as training labels, mapped to unit types (decoder labels, curation quality, bombcell labels).
TRAINING_LABELS = {"noise": "noise", "MUA": "MUA", "mua": "MUA", "SUA": "SUA", "sua": "SUA", "good": "SUA",
                   "non_soma": "MUA", "non_soma_good": "MUA", "non_soma_mua": "MUA"}


def labelled_analyzers(results_dirs: Sequence, label_property: str = "decoder_label"):
    """Analyzers and per-unit training labels from curated results (any depth of session folders).

    Parameters
    ----------
    results_dirs : sequence of path-like
        Results folders written by ``spikeline run``.
    label_property : str, default: "decoder_label"
        Curated-sorting property holding the labels (e.g. after manual relabelling).

    Returns
    -------
    analyzers : list of SortingAnalyzer
        Restricted to the curated units.
    labels : list of list of str
        Unit types, one per unit.
    """
    from pathlib import Path

    import spikeinterface as si

    analyzers, labels = [], []
    for results_dir in results_dirs:
        for post_dir in sorted(Path(results_dir).rglob("postprocessed")):
            for stream_dir in sorted(p for p in post_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                curated_dir = post_dir.parent / "curated" / stream_dir.name
                if not curated_dir.is_dir():
                    continue
                curated = si.load(curated_dir)
                if label_property not in curated.get_property_keys():
                    raise ValueError(f"{curated_dir} has no '{label_property}' property; available: "
                                     f"{sorted(curated.get_property_keys())}")
                values = [str(v) for v in curated.get_property(label_property)]
                unknown = sorted(set(values) - set(TRAINING_LABELS))
                if unknown:
                    raise ValueError(f"{curated_dir}: labels {unknown} cannot be mapped to {list(UNIT_TYPES)}")
                analyzer = si.load_sorting_analyzer(stream_dir).select_units(list(curated.unit_ids))
                analyzers.append(analyzer)
                labels.append([TRAINING_LABELS[v] for v in values])
    if not analyzers:
        raise ValueError(f"no curated stream with a postprocessed analyzer was found under {list(results_dirs)}")
    return analyzers, labels
