"""The NWB file of a manually curated sorting, written by "Apply" in ``spikeline view`` when the run exported NWB.

It goes through the same code as the pipeline's NWB step (:func:`spikeline.steps.nwb.write_units_nwb`: electrodes,
device, units table with the same columns), for the one probe that was curated, without raw or LFP series. Nothing
that did not change is recomputed: the analyzer is opened with its templates only, units that are kept are copied
as they are, merged units get the spike-count weighted average of their templates (SpikeInterface's "soft" merge;
"hard", which re-extracts the merged units' waveforms, only when their sparsities overlap too little), and split
units have their templates computed from the stored waveforms of their own spikes (loaded only for a split).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..layout import ResultsLayout, safe_name
from ..provenance import read_json

logger = logging.getLogger("spikeline")

#: Extensions the NWB units table reads (templates for waveform_mean / waveform_sd; random spikes behind them).
NWB_EXTENSIONS = ("random_spikes", "templates")


def nwb_settings(layout: ResultsLayout) -> dict[str, Any] | None:
    """The run's NWB export settings (``export.nwb`` and ``export.metadata_file`` from ``processing.json``), or
    None when the run did not export NWB."""
    config = (read_json(layout.processing_json) or {}).get("config") or {}
    export = config.get("export") or {}
    nwb = export.get("nwb") or {}
    if not nwb.get("enabled"):
        return None
    return {"backend": nwb.get("backend", "hdf5"), "metadata_file": export.get("metadata_file")}


def manual_nwb_name(session: str, stream: str, backend: str = "hdf5") -> str:
    """``<session>_<stream>_manual.nwb`` (``.nwb.zarr`` for zarr)."""
    return f"{safe_name(session)}_{stream}_manual" + (".nwb.zarr" if backend == "zarr" else ".nwb")


def curated_analyzer(analyzer_dir: Path, unit_ids: list, document: dict, job_kwargs: dict | None = None):
    """The analyzer of the manually curated units: templates only, nothing recomputed for unchanged units.

    Parameters
    ----------
    analyzer_dir : Path
        ``postprocessed/<stream>``.
    unit_ids : list
        The units of the automatic curation (``curated/<stream>``), which the manual curation starts from.
    document : dict
        The manual curation (format v2).
    job_kwargs : dict | None
        For the few units whose templates are computed (split, or merged the "hard" way).

    Returns
    -------
    SortingAnalyzer
        In memory.
    """
    import spikeinterface as si
    from spikeinterface.curation import apply_curation

    analyzer = si.load_sorting_analyzer(analyzer_dir, load_extensions=False)
    # a split unit's templates come from the waveforms of its own spikes (without them SpikeInterface would copy
    # the parent's template to both parts): load the waveforms only when something is split
    split = bool(document.get("splits")) and analyzer.has_extension("waveforms")
    for name in NWB_EXTENSIONS + (("waveforms",) if split else ()):
        analyzer.load_extension(name)
    if list(analyzer.unit_ids) != list(unit_ids):
        analyzer = analyzer.select_units(unit_ids)  # in memory: the units the curate step kept
    kwargs = {"new_id_strategy": "append", **(job_kwargs or {})}
    try:
        return apply_curation(analyzer, document, merging_mode="soft", **kwargs)
    except ValueError as exc:  # soft merging refuses units whose sparsities overlap too little
        logger.info("soft merge refused (%s); merging with recomputed templates", exc)
        return apply_curation(analyzer, document, merging_mode="hard", **kwargs)


def write_manual_nwb(layout: ResultsLayout, stream: str, analyzer_dir: Path, sorting, curated, document: dict,
                     folder: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Write the NWB file of a manually curated sorting into ``folder``.

    Parameters
    ----------
    layout : ResultsLayout
        The session's results.
    stream : str
        The stream.
    analyzer_dir : Path
        Its analyzer.
    sorting : BaseSorting
        The automatic curation the manual one starts from.
    curated : BaseSorting
        The manually curated sorting (what "Apply" saved), whose units and properties go into the file.
    document : dict
        The manual curation.
    folder : Path
        Where the file goes (created).
    settings : dict
        :func:`nwb_settings`.

    Returns
    -------
    dict
        ``file`` (name), ``identifier``, ``num_units``, ``num_spikes`` and ``metadata_note`` when the run's
        metadata file could not be read.
    """
    from ..metadata import SessionMetadata, load_session_metadata
    from ..steps.nwb import write_units_nwb

    job = read_json(layout.job_file(stream))
    note = None
    try:
        metadata = load_session_metadata(settings.get("metadata_file"))
    except Exception as exc:  # the file may have moved since the run: the units still go out, and we say so
        metadata, note = SessionMetadata(), f"metadata file not read ({exc}); subject and session left empty"
    analyzer = curated_analyzer(analyzer_dir, list(sorting.unit_ids), document)
    if [str(u) for u in analyzer.unit_ids] != [str(u) for u in curated.unit_ids]:
        raise RuntimeError(f"curated analyzer units {list(analyzer.unit_ids)} differ from the curated sorting's "
                           f"{list(curated.unit_ids)}")
    folder.mkdir(parents=True, exist_ok=True)
    name = manual_nwb_name(job["session"], stream, settings["backend"])
    facts = write_units_nwb(folder / name, job, analyzer, curated, metadata, backend=settings["backend"])
    return {"file": name, **facts, **({"metadata_note": note} if note else {})}
