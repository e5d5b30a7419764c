"""Export to Phy (optional): a Phy folder per stream, from the SortingAnalyzer, with curation labels as columns.

Phy shows per-spike amplitudes and PC features, which exist only for the analyzer's spikes, so the folder holds
the analyzer's spike trains for the units that survived curation (redundant units left out; the few duplicated
spikes that curation removed, within ``censored_period_ms``, are still there). Every property of the curated
sorting (``default_qc``, ``qc_fail_reasons``, ``decoder_label`` ... and the quality metrics) becomes a
``cluster_<name>.tsv`` column; ``cluster_si_unit_ids.tsv`` maps Phy cluster ids back to SpikeInterface unit ids.

Read it back with ``spikeinterface.extractors.read_phy(folder, load_all_cluster_properties=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import PipelineConfig
from .base import Step, StepContext


def params(config: PipelineConfig) -> dict[str, Any]:
    return config.export.phy.model_dump(mode="json", exclude={"enabled"})


def write_phy_folder(analyzer_folder: Path, curated_folder: Path, output: Path, *, compute_pc_features: bool = True,
                     copy_binary: bool = False, job_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a Phy folder for the curated units of one stream.

    Parameters
    ----------
    analyzer_folder : Path
        The stream's SortingAnalyzer (``postprocessed/<stream>``).
    curated_folder : Path
        The stream's curated sorting (``curated/<stream>``); its unit ids select the units and its properties
        become cluster columns.
    output : Path
        The Phy folder to create (must not exist).
    compute_pc_features : bool
        Write PC features (uses the analyzer's ``principal_components`` when computed).
    copy_binary : bool
        Copy the traces into the folder instead of pointing ``params.py`` at the preprocessed binary.
    job_kwargs : dict | None
        SpikeInterface job kwargs.

    Returns
    -------
    dict
        ``num_units``, ``num_spikes`` and the ``cluster_columns`` written from the curated sorting.
    """
    import spikeinterface as si
    from spikeinterface.exporters import export_to_phy

    analyzer = si.load_sorting_analyzer(analyzer_folder)
    curated = si.load(curated_folder)
    selected = analyzer.select_units(list(curated.unit_ids), format="memory")
    metric_columns = set()
    if selected.has_extension("quality_metrics"):
        metric_columns = set(selected.get_extension("quality_metrics").get_data().columns)
    columns = [key for key in curated.get_property_keys() if key not in metric_columns]
    for key in columns:
        selected.sorting.set_property(key, curated.get_property(key))
    export_to_phy(selected, output, compute_pc_features=compute_pc_features, compute_amplitudes=True,
                  copy_binary=copy_binary, additional_properties=columns, verbose=False, **(job_kwargs or {}))
    return {
        "num_units": int(selected.get_num_units()),
        "num_spikes": int(selected.sorting.count_total_num_spikes()),
        "cluster_columns": columns,
    }


def run(ctx: StepContext, inputs: dict[str, Path], output: Path) -> dict[str, Any]:
    p = ctx.config.export.phy
    return write_phy_folder(inputs["postprocess"], inputs["curate"], output, compute_pc_features=p.compute_pc_features,
                            copy_binary=p.copy_binary, job_kwargs=ctx.job_kwargs)


STEP = Step(name="export_phy", inputs=("postprocess", "curate"), params=params, run=run,
            enabled=lambda config: config.export.phy.enabled)
