"""NWB (HDF5) input: acquisition ElectricalSeries with electrode positions; and a writer for synthetic files.

Reading is SpikeInterface's ``read_nwb_recording`` (the probe comes from the electrodes table's ``rel_x`` /
``rel_y`` columns, one probe per electrode group). Series sampled below 10 kHz are treated as LFP and not
sorted. A series without electrode positions is reported with a message that says how to fix the file, instead
of SpikeInterface's "There are no channel locations" much later.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import OpenedSession, StreamCandidate

if TYPE_CHECKING:
    from spikeinterface.core import BaseRecording

#: Series sampled below this rate are LFP, not sorted (as in the AIND pipeline).
MIN_SPIKE_BAND_HZ = 10_000.0


def find_sessions(data_dir: Path) -> list[Path]:
    """Every ``*.nwb`` file under ``data_dir`` (each file is one session)."""
    return sorted(p for p in data_dir.rglob("*.nwb") if p.is_file())


def _no_locations_message(path: Path, series_path: str) -> str:
    return (
        f"{path}: {series_path} has no electrode positions (no rel_x/rel_y columns in the electrodes table), so "
        "the probe geometry is unknown and the stream cannot be sorted. Write the positions in micrometres into "
        "the electrodes table's rel_x and rel_y columns (with neuroconv: recording.set_property('location', "
        "positions) before writing), or give a probeinterface JSON through a spikeline input file."
    )


def open_session(path: Path) -> OpenedSession:
    """Open the acquisition ElectricalSeries of one NWB file.

    Parameters
    ----------
    path : Path
        An NWB (HDF5) file.

    Returns
    -------
    candidates : list of StreamCandidate
        Spike-band series with electrode positions.
    problems : list of dict
        Unusable series or an unreadable file, each with a message.
    not_sorted : list of dict
        Series left out on purpose (LFP, non-acquisition), with the reason.
    """
    import spikeinterface.extractors as se
    from spikeinterface.extractors.nwbextractors import NwbRecordingExtractor

    try:
        series_paths = NwbRecordingExtractor.fetch_available_electrical_series_paths(path)
    except Exception as exc:
        return [], [{"path": str(path), "error": f"cannot read NWB file {path}: {exc}. Is it an HDF5 NWB file?"}], []
    candidates, problems, not_sorted = [], [], []
    for series_path in series_paths:
        if not series_path.startswith("acquisition/"):
            not_sorted.append({"path": f"{path}:{series_path}", "reason": "processed series (only acquisition is sorted)"})
            continue
        try:
            recording = se.read_nwb_recording(path, electrical_series_path=series_path, load_time_vector=True)
        except Exception as exc:
            problems.append({"path": str(path), "error": f"cannot open {series_path} in {path}: {exc}"})
            continue
        if recording.sampling_frequency < MIN_SPIKE_BAND_HZ:
            not_sorted.append({"path": f"{path}:{series_path}",
                               "reason": f"sampled at {recording.sampling_frequency:g} Hz (< 10 kHz): LFP, not sorted"})
            continue
        if not recording.has_probe():
            problems.append({"path": str(path), "error": _no_locations_message(path, series_path)})
            continue
        candidates.append(StreamCandidate(stream_id=series_path.replace("/", "-"), recording=recording,
                                          block_index=0, files=[path]))
    if not series_paths:
        problems.append({"path": str(path), "error": f"{path} holds no ElectricalSeries: nothing to sort."})
    return candidates, problems, not_sorted


def write_nwb_recording(
    recording: "BaseRecording",
    path: Path,
    *,
    series_name: str = "ElectricalSeries",
    with_locations: bool = True,
    extra_lfp_rate_hz: float | None = None,
    session_start_time: dt.datetime | None = None,
    timestamps_s: np.ndarray | None = None,
    as_float: bool = False,
) -> Path:
    """Write a single-segment recording as an NWB file with pynwb (acquisition ElectricalSeries, int16).

    Parameters
    ----------
    recording : BaseRecording
        Traces in microvolts; channel groups become electrode groups (``shank<g>``).
    path : Path
        Target ``.nwb`` file.
    series_name : str, default: "ElectricalSeries"
        Name of the acquisition series.
    with_locations : bool, default: True
        Write ``rel_x`` / ``rel_y`` (set False to produce a file without positions, for error tests).
    extra_lfp_rate_hz : float | None, default: None
        Also write a decimated ``ElectricalSeriesLFP`` at this rate (which dispatch must skip).
    session_start_time : datetime | None, default: None
        Time-zone-aware start time; a fixed date by default.
    timestamps_s : numpy.ndarray | None, default: None
        Explicit sample times for the main series instead of a rate (e.g. to write a gapped clock).
    as_float : bool, default: False
        Store float32 microvolts instead of int16 counts (what some converters write; NaN and inf survive).

    Returns
    -------
    Path
    """
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ecephys import ElectricalSeries

    uv_per_bit = 2.34375
    start = session_start_time or dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    nwbfile = NWBFile(session_description="synthetic ground-truth recording", identifier=str(uuid.uuid4()),
                      session_start_time=start)
    device = nwbfile.create_device(name="probe", description="synthetic probe")
    groups = recording.get_channel_groups()
    electrode_groups = {
        g: nwbfile.create_electrode_group(name=f"shank{g}", description=f"shank {g}", location="unknown", device=device)
        for g in np.unique(groups)
    }
    if with_locations:
        nwbfile.add_electrode_column(name="rel_x", description="x position on the probe (um)")
        nwbfile.add_electrode_column(name="rel_y", description="y position on the probe (um)")
    locations = recording.get_channel_locations()
    for i, g in enumerate(groups):
        extra = {"rel_x": float(locations[i, 0]), "rel_y": float(locations[i, 1])} if with_locations else {}
        nwbfile.add_electrode(group=electrode_groups[g], location="unknown", **extra)
    region = nwbfile.create_electrode_table_region(list(range(len(groups))), "all electrodes")
    traces = recording.get_traces(return_in_uV=False)
    if as_float:
        counts, uv_per_bit = traces.astype("float32"), 1.0
    else:
        counts = np.round(traces / uv_per_bit).astype("int16")
    clock = {"timestamps": timestamps_s} if timestamps_s is not None else {"rate": recording.sampling_frequency}
    nwbfile.add_acquisition(ElectricalSeries(name=series_name, data=counts, electrodes=region,
                                             conversion=uv_per_bit * 1e-6, **clock))
    if extra_lfp_rate_hz:
        step = int(round(recording.sampling_frequency / extra_lfp_rate_hz))
        nwbfile.add_acquisition(ElectricalSeries(name=f"{series_name}LFP", data=counts[::step], electrodes=region,
                                                 rate=recording.sampling_frequency / step,
                                                 conversion=uv_per_bit * 1e-6))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with NWBHDF5IO(path, "w") as io:
        io.write(nwbfile)
    return path
