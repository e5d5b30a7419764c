"""The comparison side of benchmarks/speed.py: the same steps as a plain SpikeInterface script.

Written the way the AIND pipeline's capsules do each step with their default parameters
(/work/shared/reference/aind-pipeline.md), without spikeline's orchestration:

* ``preprocess``: read SpikeGLX, phase shift (margin 100 ms), highpass 300 Hz, IBL bad channels (coherence+psd)
  removed, global median reference, ``save`` to binary; then ``compute_motion`` (dredge_fast, windows 0.1 x probe
  span, 1 s bins) on the saved binary.
* ``postprocess``: an in-memory sparse analyzer (radius 100 um) with ``random_spikes`` + ``templates``,
  ``remove_redundant_units`` (agreement 0.9), a second analyzer on the deduplicated sorting, the extensions in one
  ``compute`` call, then ``quality_metrics``, then ``save_as`` zarr.
* ``curate``: ``default_qc`` thresholds, bombcell labels, SLAy merge suggestions, written as CSV and JSON.
* ``nwb``: neuroconv's ``write_sorting_analyzer_to_nwbfile`` (units with waveforms and properties).

The extensions and metrics are spikeline's defaults (which are the AIND ones), so both sides compute the same
things. Each function takes the scratch folder and job kwargs and writes under it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def preprocess(raw_folder: Path, work: Path, job_kwargs: dict[str, Any]) -> None:
    """Preprocess the SpikeGLX session in ``raw_folder`` into ``work/preprocessed`` and ``work/motion``."""
    import numpy as np
    import spikeinterface.extractors as se
    import spikeinterface.preprocessing as spre

    recording = se.read_spikeglx(raw_folder, stream_id="imec0.ap")
    recording = spre.phase_shift(recording, margin_ms=100.0)
    recording = spre.highpass_filter(recording, freq_min=300.0)
    bad_ids, _ = spre.detect_bad_channels(recording, method="coherence+psd", seed=0)
    recording = recording.remove_channels(bad_ids)
    recording = spre.common_reference(recording, reference="global", operator="median")
    saved = recording.save(folder=work / "preprocessed", format="binary", **job_kwargs)
    span_um = float(np.ptp(saved.get_channel_locations()[:, 1]))
    spre.compute_motion(saved, preset="dredge_fast", folder=work / "motion", raise_error=False,
                        estimate_motion_kwargs={"win_step_um": 0.1 * span_um, "win_scale_um": 0.1 * span_um,
                                                "bin_s": 1.0}, **job_kwargs)


def postprocess(sorting_folder: Path, work: Path, job_kwargs: dict[str, Any], extensions: dict[str, dict]) -> None:
    """Analyzer, redundant units removed, extensions and metrics, saved as zarr to ``work/postprocessed.zarr``."""
    import spikeinterface as si
    import spikeinterface.curation as scur

    recording = si.load(work / "preprocessed")
    sorting = si.load(sorting_folder)
    sparsity = {"method": "radius", "radius_um": 100.0}
    analyzer = si.create_sorting_analyzer(sorting, recording, sparse=True, return_in_uV=True,
                                          sparsity_kwargs=sparsity, job_kwargs=job_kwargs)
    analyzer.compute({"random_spikes": extensions["random_spikes"], "templates": {}}, **job_kwargs)
    deduplicated = scur.remove_redundant_units(analyzer, duplicate_threshold=0.9)
    analyzer = si.create_sorting_analyzer(deduplicated, recording, sparse=True, return_in_uV=True,
                                          sparsity_kwargs=sparsity, job_kwargs=job_kwargs)
    analyzer.compute({k: v for k, v in extensions.items() if k != "quality_metrics"}, **job_kwargs)
    analyzer.compute("quality_metrics", **extensions.get("quality_metrics", {}), **job_kwargs)
    analyzer.save_as(format="zarr", folder=work / "postprocessed.zarr")


def _allow_own_zarr_pickles() -> None:
    """SpikeInterface stores some analyzer fields as pickled zarr chunks, which numcodecs refuses to decode unless
    allowed; this script reads back only the analyzer it wrote itself."""
    import numcodecs.pickles

    numcodecs.pickles.ALLOW_UNSAFE_PICKLE_DECODE = True


def curate(work: Path, job_kwargs: dict[str, Any]) -> None:
    """default_qc, bombcell labels and merge suggestions, as ``work/unit_labels.csv`` and ``work/curation.json``."""
    import spikeinterface as si
    import spikeinterface.curation as scur

    _allow_own_zarr_pickles()
    analyzer = si.load_sorting_analyzer(work / "postprocessed.zarr")
    metrics = analyzer.get_metrics_extension_data()
    qc = scur.threshold_metrics_label_units(metrics, thresholds={
        "isi_violations_ratio": {"less": 0.5}, "presence_ratio": {"greater": 0.8}, "amplitude_cutoff": {"less": 0.1}})
    labels = scur.bombcell_label_units(analyzer)
    merges = scur.compute_merge_unit_groups(analyzer, preset="slay", **job_kwargs)
    table = metrics.join(qc).join(labels, rsuffix="_bombcell")
    table.to_csv(work / "unit_labels.csv")
    (work / "curation.json").write_text(json.dumps({"merges": [[str(u) for u in g] for g in merges]}) + "\n")


def nwb(work: Path) -> None:
    """Units (spike times, waveforms, metrics, labels) to ``work/units.nwb`` with neuroconv."""
    import datetime as dt

    import pandas as pd
    import spikeinterface as si
    from neuroconv.tools.spikeinterface import write_sorting_analyzer_to_nwbfile

    _allow_own_zarr_pickles()
    analyzer = si.load_sorting_analyzer(work / "postprocessed.zarr")
    labels = pd.read_csv(work / "unit_labels.csv", index_col=0)
    for column in labels.columns:
        if labels[column].dtype == object:
            analyzer.sorting.set_property(column, labels[column].astype(str).to_numpy())
    metadata = {"NWBFile": {"session_description": "plain SpikeInterface script",
                            "identifier": "plain-si-benchmark",
                            "session_start_time": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}}
    write_sorting_analyzer_to_nwbfile(analyzer, nwbfile_path=work / "units.nwb", metadata=metadata, overwrite=True)
