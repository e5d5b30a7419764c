"""NWB (session level): one file per block and recording with every probe, built with neuroconv.

Contents, per probe (stream) of the group:

* a device and an electrode group named after the probe (``imec0``), and its rows of the electrodes table with
  contact positions (``rel_x``, ``rel_y``) and the brain area from the metadata file (``location``);
* its curated units in the one units table: spike times of the *curated* sorting (so counts equal
  ``curated/<stream>``), ``waveform_mean`` / ``waveform_sd`` from the analyzer's templates (volts), the unit's
  sparse channels as its ``electrodes`` region, and every property of the curated sorting (``default_qc``,
  ``qc_fail_reasons``, every quality metric, and any label added later such as ``decoder_label`` or
  ``bombcell_label``), each column with a description; ``unit_name`` is ``<probe>_<unit id>``;
* optionally the raw traces (``ElectricalSeriesRaw<probe>``) and an LFP series (``ElectricalSeriesLFP<probe>``,
  band-passed and decimated from the raw traces), shortened to ``stub_duration_s`` in stub mode.

Subject and session come from ``export.metadata_file`` (:mod:`spikeline.metadata`); the fields a DANDI upload
will ask for and that are missing are logged and recorded in the step's outputs.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PipelineConfig
from ..errors import ConfigError
from ..metadata import SessionMetadata, load_session_metadata, missing_for_dandi, to_neuroconv_metadata
from ..provenance import read_json
from .base import JOB_INPUT, Step, StepContext

logger = logging.getLogger("spikeline")

#: Descriptions of the unit columns spikeline writes; quality metrics take SpikeInterface's own descriptions.
UNIT_COLUMN_DESCRIPTIONS = {
    "default_qc": "True when the unit passes every default_qc threshold of the curation step (strict; NaN fails).",
    "qc_fail_reasons": "The default_qc thresholds the unit failed, with its values; empty when it passed.",
    "decoder_label": "Unit classifier label: noise, mua (multi-unit) or sua (single unit).",
    "decoder_probability": "Probability of decoder_label given by the unit classifier.",
    "bombcell_label": "Bombcell classification of the unit (e.g. GOOD, MUA, NOISE, NON-SOMA).",
    "unitrefine_label": "UnitRefine classification of the unit.",
    "unitrefine_probability": "Probability of unitrefine_label given by UnitRefine.",
    "main_channel_id": "Channel with the largest template amplitude, as reported by the sorter.",
    "si_unit_id": "Unit id in the SpikeInterface curated sorting of this probe (curated/<stream>).",
    "probe": "Probe (electrode group) the unit was sorted on.",
    "stream": "spikeline stream the unit comes from (block, probe, recording).",
    "unit_name": "Unique name of the unit in this file: <probe>_<unit id>.",
}


def column_description(name: str, metric_descriptions: dict[str, str]) -> str:
    """Description of a unit column: ours, SpikeInterface's metric description, or a generic fallback."""
    return (UNIT_COLUMN_DESCRIPTIONS.get(name) or metric_descriptions.get(name)
            or f"Unit property '{name}' of the curated sorting (spikeline curation).")


def params(config: PipelineConfig) -> dict[str, Any]:
    """Resolved NWB parameters, with the metadata file's content (so an edited file rewrites the NWB)."""
    p = config.export.nwb.model_dump(mode="json", exclude={"enabled"})
    metadata = load_session_metadata(config.export.metadata_file)
    return {**p, "metadata": metadata.model_dump(mode="json", exclude_defaults=True)}


def check_backend(backend: str) -> None:
    """Fail before any work when NWB files cannot be written *and validated* with ``backend`` here.

    Zarr NWB is tried on a tiny file: hdmf-zarr must import, write, and pass ``pynwb.validate``.

    Raises
    ------
    ConfigError
        With the reason, when ``backend`` is ``zarr`` and that fails.
    """
    if backend != "zarr":
        return
    import sys
    import tempfile

    why = None
    try:
        import pynwb
        from hdmf_zarr.nwb import NWBZarrIO

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "probe.nwb.zarr"
            nwbfile = pynwb.NWBFile(session_description="probe", identifier="probe",
                                    session_start_time=dt.datetime.now(dt.timezone.utc))
            with NWBZarrIO(str(path), mode="w") as io:
                io.write(nwbfile)
            errors = pynwb.validate(path=str(path))
            errors = errors[0] if isinstance(errors, tuple) else errors
            if errors:
                why = f"pynwb.validate reports {errors[0]}"
    except Exception as exc:  # any failure means the files could not be checked by DANDI's tools
        why = f"{type(exc).__name__}: {exc}"
    if why:
        raise ConfigError(
            f"export.nwb.backend 'zarr' cannot be used on this Python ({sys.version.split()[0]}): a zarr NWB file "
            f"written with hdmf-zarr could not be validated ({why.splitlines()[0][:300]}). Zarr NWB needs a "
            "hdmf-zarr that pynwb's validator and nwbinspector can read (hdmf-zarr >= 0.14, Python >= 3.12). "
            "Use backend 'hdf5' (the default), which DANDI validates."
        )


def _probe_name(job: dict) -> str:
    return str(job["stream_id"]).split(".")[0]


def _start_time(jobs: list[dict]) -> dt.datetime:
    """SpikeGLX ``fileCreateTime`` of the first stream, in this machine's time zone; else now."""
    from ..formats.spikeglx import read_meta

    for job in jobs:
        for f in job.get("files", []):
            if f["path"].endswith(".meta"):
                created = read_meta(Path(f["path"])).get("fileCreateTime")
                if created:
                    return dt.datetime.fromisoformat(created).astimezone()
    return dt.datetime.now(dt.timezone.utc).astimezone()


def _electrode_rows(nwbfile, probe: str, recording, channel_ids) -> list[int]:
    """Rows of the electrodes table for some channels of one probe (neuroconv names rows by ``channel_name``)."""
    names_by_id = dict(zip(recording.channel_ids, recording.get_property("channel_name")
                           if "channel_name" in recording.get_property_keys() else recording.channel_ids))
    wanted = {str(names_by_id[c]) for c in channel_ids}
    groups = np.asarray(nwbfile.electrodes["group_name"][:]).astype(str)
    names = np.asarray(nwbfile.electrodes["channel_name"][:]).astype(str)
    return [i for i in range(len(groups)) if groups[i] == probe and names[i] in wanted]


def _probe_metadata(probe: str, pg, description: str, location: str) -> dict[str, Any]:
    """neuroconv metadata for one probe: its own device (named like the probe, so two probes of one model, or
    two probes that report the same serial number, never share a device), its model, and its electrode group."""
    device: dict[str, Any] = {"name": probe, "description": description}
    if pg.serial_number not in (None, "", "0"):
        device["serial_number"] = str(pg.serial_number)
    metadata: dict[str, Any] = {"Devices": {probe: device}, "Ecephys": {
        "ElectrodeGroups": {probe: {"name": probe, "description": description, "location": location,
                                    "device_metadata_key": probe}},
        "Electrodes": [{"name": "inter_sample_shift", "description": "Delay of the channel's sampling relative to "
                        "the first channel, as a fraction of the sampling period (multiplexed ADCs)."}]}}
    if pg.model_name:
        model_key = f"{pg.manufacturer or 'unknown'}_{pg.model_name}"
        model = {"name": pg.model_name, "model_number": pg.model_name, "manufacturer": pg.manufacturer or "unknown"}
        if pg.annotations.get("description"):
            model["description"] = pg.annotations["description"]
        metadata["DeviceModels"] = {model_key: model}
        device["device_model_metadata_key"] = model_key
    return metadata


def _add_probe(nwbfile, stream: str, job: dict, metadata: SessionMetadata, analyzer, curated,
               write_waveforms: bool) -> dict[str, Any]:
    """Add one probe's electrodes and the units of ``curated`` (templates and sparsity from ``analyzer``, which
    must hold every unit of ``curated``)."""
    from neuroconv.tools.spikeinterface import add_recording_metadata_to_nwbfile, add_sorting_to_nwbfile

    probe = _probe_name(job)
    recording = analyzer.recording.clone()
    recording.set_property("location", recording.get_channel_locations())  # neuroconv reads positions from it
    recording.set_property("group_name", np.array([probe] * recording.get_num_channels()))
    info = metadata.probes.get(probe)
    location = (info.location if info else None) or "unknown"
    recording.set_property("brain_area", np.array([location] * recording.get_num_channels()))
    pg = recording.get_probe()
    description = (info.description if info and info.description else
                   f"{pg.manufacturer or ''} {pg.model_name or job.get('probe_part_number') or 'probe'} "
                   f"({job['stream_id']})".strip())
    add_recording_metadata_to_nwbfile(recording, nwbfile=nwbfile,
                                      metadata=_probe_metadata(probe, pg, description, location))

    unit_ids = list(curated.unit_ids)
    sorting = curated.clone()
    sorting.set_property("unit_name", np.array([f"{probe}_{u}" for u in unit_ids]))
    sorting.set_property("si_unit_id", np.array([str(u) for u in unit_ids]))
    sorting.set_property("probe", np.array([probe] * len(unit_ids)))
    sorting.set_property("stream", np.array([stream] * len(unit_ids)))
    metric_descriptions = {}
    for ext in ("quality_metrics", "template_metrics"):
        if analyzer.has_extension(ext):
            metric_descriptions.update(analyzer.get_extension(ext).get_metric_column_descriptions())
    descriptions = {k: column_description(k, metric_descriptions) for k in sorting.get_property_keys()}

    sparsity = analyzer.sparsity
    electrodes = [_electrode_rows(nwbfile, probe, recording, sparsity.unit_id_to_channel_ids[u] if sparsity is not None
                                  else recording.channel_ids) for u in unit_ids]
    waveforms = None
    if write_waveforms:
        templates = analyzer.get_extension("templates")
        waveforms = {"means": templates.get_templates(unit_ids=unit_ids, operator="average") * 1e-6,
                     "sds": templates.get_templates(unit_ids=unit_ids, operator="std") * 1e-6,
                     "sampling_rate": analyzer.sampling_frequency, "unit": "volts"}
    add_sorting_to_nwbfile(sorting, nwbfile=nwbfile, property_descriptions=descriptions,
                           units_description="Curated units sorted by spikeline (SpikeInterface); spike times in "
                           "seconds from the session start; waveforms are the mean and sd of each unit's spikes.",
                           waveform_data_dict=waveforms, unit_electrode_indices=electrodes)
    return {"probe": probe, "num_units": len(unit_ids),
            "num_spikes": int(curated.count_total_num_spikes()), "electrode_location": location}


def _add_series(nwbfile, job: dict, p, kind: str) -> None:
    """Raw or LFP traces of one probe, from the raw files (``kind``: ``raw`` or ``lfp``)."""
    import spikeinterface.preprocessing as spre
    from neuroconv.tools.spikeinterface import add_recording_to_nwbfile
    from spikeinterface.core.base import BaseExtractor

    probe = _probe_name(job)
    recording = BaseExtractor.from_dict(job["recording"])
    if p.stub:
        recording = recording.frame_slice(0, min(recording.get_num_samples(),
                                                 int(p.stub_duration_s * recording.sampling_frequency)))
    recording.set_property("group_name", np.array([probe] * recording.get_num_channels()))
    if kind == "lfp":
        # A 0.1 Hz edge needs long chunks: SpikeInterface refuses it unless told; neuroconv writes in chunks of
        # about a second, which the filter margin covers for the LFP band (as the AIND pipeline does).
        recording = spre.bandpass_filter(recording, freq_min=p.lfp_freq_min_hz, freq_max=p.lfp_freq_max_hz,
                                         ignore_low_freq_error=True)
        recording = spre.decimate(recording, decimation_factor=p.lfp_decimation)
    name = f"ElectricalSeries{'LFP' if kind == 'lfp' else 'Raw'}{probe}"
    series = {"Ecephys": {"ElectricalSeries": {name: {
        "name": name, "description": f"{'LFP band' if kind == 'lfp' else 'Raw'} traces of probe {probe}"
        + (f" ({p.lfp_freq_min_hz:g}-{p.lfp_freq_max_hz:g} Hz, decimated by {p.lfp_decimation})" if kind == "lfp"
           else "") + (f"; first {p.stub_duration_s:g} s only (stub)" if p.stub else ""),
    }}}}
    add_recording_to_nwbfile(recording, nwbfile=nwbfile, metadata=series, metadata_key=name,
                             parent_container="processing/LFP" if kind == "lfp" else "acquisition")


def write_units_nwb(path: Path, job: dict, analyzer, curated, metadata: SessionMetadata,
                    backend: str = "hdf5") -> dict[str, Any]:
    """Write one probe's units to an NWB file of their own, exactly as the session NWB writes them.

    Used for a manually curated sorting (``spikeline view``, "Apply"): electrodes, device and the units table
    with the same columns as in the session's NWB file; no raw or LFP series.

    Parameters
    ----------
    path : Path
        The file to write.
    job : dict
        The stream's job (session, probe, files for the start time).
    analyzer : SortingAnalyzer
        Holds the templates and sparsity of every unit of ``curated``.
    curated : BaseSorting
        The units, with their properties.
    metadata : SessionMetadata
        Subject and session.
    backend : {"hdf5", "zarr"}, default: "hdf5"

    Returns
    -------
    dict
        ``identifier`` and the probe's facts (``num_units``, ``num_spikes`` ...).
    """
    from neuroconv.tools.nwb_helpers import configure_and_write_nwbfile, make_nwbfile_from_metadata

    identifier = str(uuid.uuid4())
    nwbfile = make_nwbfile_from_metadata(to_neuroconv_metadata(metadata, job["session"], _start_time([job]),
                                                               identifier))
    facts = _add_probe(nwbfile, job["stream"], job, metadata, analyzer, curated, write_waveforms=True)
    configure_and_write_nwbfile(nwbfile, nwbfile_path=path, backend=backend)
    return {"identifier": identifier, **facts}


def run(ctx: StepContext, inputs: dict[str, Path], output: Path) -> dict[str, Any]:
    import spikeinterface as si
    from neuroconv.tools.nwb_helpers import configure_and_write_nwbfile, make_nwbfile_from_metadata

    p = ctx.config.export.nwb
    check_backend(p.backend)
    metadata = load_session_metadata(ctx.config.export.metadata_file)
    jobs = [read_json(inputs[f"{JOB_INPUT}/{s}"]) for s in ctx.members]
    session = jobs[0]["session"]
    probes = [_probe_name(job) for job in jobs]
    missing = missing_for_dandi(metadata, probes)
    if missing:
        logger.warning("[%s] nwb: a DANDI upload will ask for these metadata fields, missing from the metadata "
                       "file (export.metadata_file / --nwb-metadata): %s", ctx.stream, ", ".join(missing))
    identifier = str(uuid.uuid4())
    nwbfile = make_nwbfile_from_metadata(to_neuroconv_metadata(metadata, session, _start_time(jobs), identifier))

    # waveform_mean is one array for the whole table: written when every probe's templates have the same shape
    shapes = {_template_shape(inputs[f"postprocess/{s}"]) for s in ctx.members}
    write_waveforms = len(shapes) == 1
    probes_written = []
    for stream, job in zip(ctx.members, jobs):
        probes_written.append(_add_probe(nwbfile, stream, job, metadata,
                                         si.load_sorting_analyzer(inputs[f"postprocess/{stream}"]),
                                         si.load(inputs[f"curate/{stream}"]), write_waveforms))
        if p.write_raw:
            _add_series(nwbfile, job, p, "raw")
        if p.write_lfp:
            _add_series(nwbfile, job, p, "lfp")

    output.mkdir(parents=True, exist_ok=True)
    path = output / ctx.layout.nwb_file(session, ctx.stream, p.backend).name
    configure_and_write_nwbfile(nwbfile, nwbfile_path=path, backend=p.backend)
    return {"nwb_file": str(ctx.layout.nwb_file(session, ctx.stream, p.backend)), "identifier": identifier,
            "probes": probes_written, "waveforms_written": write_waveforms, "missing_for_dandi": missing}


def _template_shape(analyzer_folder: Path) -> tuple:
    import spikeinterface as si

    analyzer = si.load_sorting_analyzer(analyzer_folder, load_extensions=False)
    return (analyzer.get_num_channels(), analyzer.sampling_frequency)


STEP = Step(name="nwb", inputs=(JOB_INPUT, "postprocess", "curate"), params=params, run=run,
            extra_packages=("neuroconv", "pynwb", "hdmf"), enabled=lambda config: config.export.nwb.enabled,
            scope="group")
