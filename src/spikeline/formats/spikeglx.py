"""SpikeGLX files: checking them before SpikeInterface reads them, and writing them (for synthetic sessions).

SpikeGLX saves each stream as a flat interleaved int16 ``.bin`` and a ``key=value`` text ``.meta``. Reading is
SpikeInterface's job (``read_spikeglx``, through neo, with the probe from probeinterface). This module adds
what those readers do not: a clear error when a ``.meta`` is missing or disagrees with its ``.bin`` (neo
silently trusts the file size), and a writer that produces files SpikeGLX itself would, so tests and demos
exercise the real reader.

File naming: ``<run>_g<gate>/<run>_g<gate>_imec<probe>/<run>_g<gate>_t<trigger>.imec<probe>.ap.bin``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from . import OpenedSession, StreamCandidate

if TYPE_CHECKING:
    from probeinterface import Probe
    from spikeinterface.core import BaseRecording

NUM_READOUT_CHANNELS = 384


@dataclass(frozen=True)
class ProbeModel:
    """What the writer needs to know of a Neuropixels model (the catalogue is probeinterface's; these are the
    acquisition settings SpikeGLX writes into the ``.meta``)."""

    imro_type: int
    ai_range_max_v: float
    max_int: int
    ap_gain: float
    num_shanks: int
    shank_pitch_um: float

    @property
    def uv_per_bit(self) -> float:
        return self.ai_range_max_v / self.max_int / self.ap_gain * 1e6


#: Models the writer supports: NP1.0, NP2.0 single shank, NP2.0 four shanks.
PROBE_MODELS = {
    "NP1000": ProbeModel(imro_type=0, ai_range_max_v=0.6, max_int=512, ap_gain=500, num_shanks=1, shank_pitch_um=0),
    "NP2000": ProbeModel(imro_type=21, ai_range_max_v=0.5, max_int=8192, ap_gain=80, num_shanks=1, shank_pitch_um=0),
    "NP2010": ProbeModel(imro_type=24, ai_range_max_v=0.5, max_int=8192, ap_gain=80, num_shanks=4, shank_pitch_um=250),
}
NP1_UV_PER_BIT = PROBE_MODELS["NP1000"].uv_per_bit  # 2.34375 uV

REQUIRED_AP_KEYS = ("nSavedChans", "imSampRate", "fileSizeBytes", "fileName", "snsApLfSy", "imroTbl")

def read_meta(meta_path: Path) -> dict[str, str]:
    """Parse a ``.meta`` file into a dict of strings (``~`` prefixes dropped).

    Parameters
    ----------
    meta_path : Path
        The ``.meta`` file.

    Returns
    -------
    dict
        Raw string values.

    Raises
    ------
    InputError
        If the file cannot be read or holds no ``key=value`` lines.
    """
    try:
        text = Path(meta_path).read_text(errors="replace")
    except OSError as exc:
        raise InputError(
            f"cannot read SpikeGLX metadata file {meta_path}: {exc.strerror}. "
            "Check that the file exists and that you have read permission on it."
        ) from None
    meta = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            meta[key.strip().lstrip("~")] = value.strip()
    if not meta:
        raise InputError(f"{meta_path} holds no 'key=value' lines: it is not a SpikeGLX .meta file.")
    return meta


@dataclass(frozen=True)
class APStreamFiles:
    """One checked SpikeGLX AP file pair.

    Attributes
    ----------
    bin_path, meta_path : Path
        The data and metadata files.
    stream_id : str
        SpikeInterface's stream id, e.g. ``"imec0.ap"``.
    num_saved_channels : int
        Channels in the file, sync channel included.
    num_samples : int
        Samples per channel.
    sampling_frequency_hz : float
        From ``imSampRate``.
    probe_part_number : str | None
        ``imDatPrb_pn``.
    """

    bin_path: Path
    meta_path: Path
    stream_id: str
    num_saved_channels: int
    num_samples: int
    sampling_frequency_hz: float
    probe_part_number: str | None

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sampling_frequency_hz


def _int_field(meta: dict[str, str], key: str, meta_path: Path) -> int:
    try:
        return int(float(meta[key]))
    except (KeyError, ValueError):
        raise InputError(
            f"{meta_path}: field '{key}' is missing or not a number (got {meta.get(key)!r}). "
            "The .meta file is damaged or not from SpikeGLX; re-copy it from the acquisition machine."
        ) from None


def check_ap_stream(bin_path: Path) -> APStreamFiles:
    """Check that an AP ``.bin`` has a matching, consistent ``.meta``.

    Parameters
    ----------
    bin_path : Path
        A ``*.ap.bin`` file.

    Returns
    -------
    APStreamFiles

    Raises
    ------
    InputError
        When the ``.meta`` is missing, unreadable or incomplete, or when the ``.bin`` size disagrees with
        ``fileSizeBytes`` / ``nSavedChans`` (a truncated copy or a wrong ``.meta``).
    """
    bin_path = Path(bin_path)
    meta_path = bin_path.with_suffix(".meta")
    if not meta_path.exists():
        raise InputError(
            f"{bin_path} has no metadata file: expected {meta_path.name} beside it. SpikeGLX writes a .meta "
            "next to every .bin and spikeline needs it for the sampling rate, gains and probe geometry; copy it "
            "from the acquisition machine into the same folder."
        )
    meta = read_meta(meta_path)
    missing = [k for k in REQUIRED_AP_KEYS if k not in meta]
    if missing:
        raise InputError(
            f"{meta_path} lacks required field(s) {missing}. The file is incomplete (SpikeGLX writes the "
            "metadata when a recording stops: was it interrupted?); re-copy it from the acquisition machine."
        )
    num_channels = _int_field(meta, "nSavedChans", meta_path)
    expected_bytes = _int_field(meta, "fileSizeBytes", meta_path)
    if num_channels <= 0:
        raise InputError(f"{meta_path}: nSavedChans={num_channels} must be a positive number of channels.")
    try:
        sampling_frequency_hz = float(meta["imSampRate"])
    except ValueError:
        sampling_frequency_hz = float("nan")
    if not np.isfinite(sampling_frequency_hz) or sampling_frequency_hz <= 0:
        raise InputError(f"{meta_path}: imSampRate={meta['imSampRate']!r} is not a positive sampling rate.")
    try:
        actual_bytes = bin_path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {bin_path}: {exc.strerror}.") from None
    bytes_per_frame = 2 * num_channels
    if actual_bytes != expected_bytes or actual_bytes % bytes_per_frame != 0:
        raise InputError(
            f"{bin_path} is {actual_bytes:,} bytes but its .meta says fileSizeBytes={expected_bytes:,} "
            f"({num_channels} int16 channels, {bytes_per_frame} bytes per sample). The .bin is truncated or "
            "padded (an interrupted copy?), or the .meta belongs to another file. Re-copy both files from the "
            "acquisition machine; spikeline will not guess which samples are valid."
        )
    if actual_bytes == 0:
        raise InputError(f"{bin_path} is empty (0 bytes): there is nothing to sort.")
    device = bin_path.name.split(".")[-3] if bin_path.name.count(".") >= 3 else "imec0"
    return APStreamFiles(
        bin_path=bin_path,
        meta_path=meta_path,
        stream_id=f"{device}.ap",
        num_saved_channels=num_channels,
        num_samples=actual_bytes // bytes_per_frame,
        sampling_frequency_hz=sampling_frequency_hz,
        probe_part_number=meta.get("imDatPrb_pn"),
    )


def readout_electrodes(part_number: str, num_channels: int, num_shanks_used: int = 1) -> list[tuple[int, int]]:
    """(shank, electrode) of each of the 384 readout channels: the first ``num_channels`` channels are spread over
    the first ``num_shanks_used`` shanks (bottom electrodes first), the others fill the remaining shanks."""
    model = PROBE_MODELS[part_number]
    if not 1 <= num_shanks_used <= model.num_shanks or num_channels % num_shanks_used:
        raise ValueError(f"{part_number}: cannot spread {num_channels} channels over {num_shanks_used} shank(s)")
    per_shank = num_channels // num_shanks_used
    layout = [(c // per_shank, c % per_shank) for c in range(num_channels)]
    spare_shanks = list(range(num_shanks_used, model.num_shanks)) or [num_shanks_used - 1]
    for k in range(NUM_READOUT_CHANNELS - num_channels):
        shank = spare_shanks[k % len(spare_shanks)]
        offset = per_shank if shank < num_shanks_used else 0
        layout.append((shank, offset + k // len(spare_shanks)))
    return layout


def neuropixels_probe(num_channels: int, part_number: str = "NP1000", num_shanks_used: int = 1) -> "Probe":
    """The probe the SpikeGLX reader attaches to a file written by :func:`write_ap_stream` with these settings.

    Parameters
    ----------
    num_channels : int
        Saved AP channels, 1 to 384.
    part_number : str, default: "NP1000"
        A key of :data:`PROBE_MODELS`.
    num_shanks_used : int, default: 1
        Shanks the saved channels are spread over (multi-shank models).

    Returns
    -------
    probeinterface.Probe
        Geometry from probeinterface's catalogue, device channel indices 0..N-1.
    """
    from probeinterface.neuropixels_tools import build_neuropixels_probe

    if not 1 <= num_channels <= NUM_READOUT_CHANNELS:
        raise ValueError(f"num_channels must be in 1..{NUM_READOUT_CHANNELS}, got {num_channels}")
    full = build_neuropixels_probe(probe_part_number=part_number)
    index = {contact_id: i for i, contact_id in enumerate(full.contact_ids)}
    prefix = PROBE_MODELS[part_number].num_shanks > 1
    wanted = [f"s{sh}e{el}" if prefix else f"e{el}"
              for sh, el in readout_electrodes(part_number, num_channels, num_shanks_used)[:num_channels]]
    probe = full.get_slice(np.array([index[c] for c in wanted]))
    probe.set_device_channel_indices(np.arange(num_channels))
    return probe


def np1_probe(num_channels: int) -> "Probe":
    """A Neuropixels 1.0 probe restricted to its first ``num_channels`` readout channels (bank 0)."""
    return neuropixels_probe(num_channels, "NP1000")


def ap_bin_path(folder: Path, run_name: str, probe_index: int = 0, gate: int = 0, trigger: int = 0) -> Path:
    """Where SpikeGLX puts an AP file: ``folder/<run>_g0/<run>_g0_imec0/<run>_g0_t0.imec0.ap.bin``."""
    gate_dir = Path(folder) / f"{run_name}_g{gate}"
    probe_dir = gate_dir / f"{run_name}_g{gate}_imec{probe_index}"
    return probe_dir / f"{run_name}_g{gate}_t{trigger}.imec{probe_index}.ap.bin"


def _imro_table(part_number: str, layout: list[tuple[int, int]]) -> str:
    model = PROBE_MODELS[part_number]
    if model.imro_type == 0:  # (channel bank ref ap_gain lf_gain ap_hipass)
        entries = "".join(f"({c} {el // NUM_READOUT_CHANNELS} 0 {model.ap_gain:g} 250 1)" for c, (_, el) in enumerate(layout))
    elif model.imro_type == 21:  # (channel bank_mask ref electrode)
        entries = "".join(f"({c} 1 0 {el})" for c, (_, el) in enumerate(layout))
    else:  # 24: (channel shank bank ref electrode)
        entries = "".join(f"({c} {sh} 0 0 {el})" for c, (sh, el) in enumerate(layout))
    return f"({model.imro_type},{NUM_READOUT_CHANNELS}){entries}"


def _meta_lines(part_number: str, num_shanks_used: int, bin_path: Path, num_channels: int, num_samples: int,
                sampling_frequency_hz: float, positions_um: np.ndarray, shank_ids: list[int], sha1: str,
                file_bytes: int) -> list[str]:
    model = PROBE_MODELS[part_number]
    layout = readout_electrodes(part_number, num_channels, num_shanks_used)
    chan_map = "".join(f"(AP{c};{c}:{c})" for c in range(num_channels)) + f"(SY0;{NUM_READOUT_CHANNELS}:{num_channels})"
    # snsGeomMap: x within each shank (from its left edge) and y, for the saved AP channels
    x_within = positions_um[:, 0] - np.array(shank_ids) * model.shank_pitch_um
    x_offset = 11.0 - x_within.min() if num_channels > 2 else 0.0
    geom = "".join(f"({sh}:{x + x_offset:g}:{y:g}:1)" for sh, x, (_, y) in zip(shank_ids, x_within, positions_um))
    lines = [
        f"acqApLfSy={NUM_READOUT_CHANNELS},{NUM_READOUT_CHANNELS if model.imro_type == 0 else 0},1",
        "appVersion=20240129",
        "fileCreateTime=2026-01-01T12:00:00",
        f"fileName={bin_path.as_posix()}",
        f"fileSHA1={sha1}",
        f"fileSizeBytes={file_bytes}",
        f"fileTimeSecs={num_samples / sampling_frequency_hz:.6f}",
        "firstSample=0",
        "gateMode=Immediate",
        f"imAiRangeMax={model.ai_range_max_v}",
        f"imAiRangeMin={-model.ai_range_max_v}",
        "imDatPrb_dock=1",
        f"imDatPrb_pn={part_number}",
        "imDatPrb_port=1",
        "imDatPrb_slot=2",
        "imDatPrb_sn=18005100000",
        f"imDatPrb_type={model.imro_type}",
        f"imMaxInt={model.max_int}",
        f"imSampRate={sampling_frequency_hz:g}",
        "imTrgRising=1",
        "imTrgSource=0",
        f"nSavedChans={num_channels + 1}",
        f"snsApLfSy={num_channels},0,1",
        f"snsSaveChanSubset=0:{num_channels - 1},{NUM_READOUT_CHANNELS}",
        "syncImInputSlot=2",
        "syncSourceIdx=0",
        "syncSourcePeriod=1",
        "trigMode=Immediate",
        "typeImEnabled=1",
        "typeThis=imec",
        f"~imroTbl={_imro_table(part_number, layout)}",
        f"~snsChanMap=({NUM_READOUT_CHANNELS},0,1){chan_map}",
        f"~snsGeomMap=({part_number},{model.num_shanks},{model.shank_pitch_um:g},70){geom}",
    ]
    if model.imro_type != 0:
        lines.insert(lines.index(f"imMaxInt={model.max_int}"), f"imChan0apGain={model.ap_gain:g}")
    return lines


def write_ap_stream(recording: "BaseRecording", bin_path: Path, part_number: str = "NP1000",
                    num_shanks_used: int = 1, chunk_duration_s: float = 5.0) -> Path:
    """Write a recording as a SpikeGLX Neuropixels AP stream (``.ap.bin`` + ``.ap.meta``).

    The traces (in microvolts) are stored as int16 at the model's AP gain (NP1.0: 500, 2.34375 uV per bit;
    NP2.0: 80, 0.763 uV per bit), followed by a sync channel carrying a 1 Hz square wave on bit 6, as SpikeGLX
    saves it.

    Parameters
    ----------
    recording : BaseRecording
        Single-segment recording in microvolts on :func:`neuropixels_probe` with the same settings.
    bin_path : Path
        Target ``*.ap.bin`` path (see :func:`ap_bin_path`); parent folders are created.
    part_number : str, default: "NP1000"
        A key of :data:`PROBE_MODELS`.
    num_shanks_used : int, default: 1
        Shanks the channels are spread over (as for :func:`neuropixels_probe`).
    chunk_duration_s : float, default: 5.0
        Seconds written per chunk (memory stays bounded).

    Returns
    -------
    Path
        ``bin_path``.
    """
    model = PROBE_MODELS[part_number]
    if recording.get_num_segments() != 1:
        raise ValueError("write_ap_stream writes one segment (one SpikeGLX file); split the recording first")
    bin_path = Path(bin_path)
    bin_path.parent.mkdir(parents=True, exist_ok=True)
    num_channels = recording.get_num_channels()
    num_samples = recording.get_num_samples()
    fs = recording.sampling_frequency
    chunk = max(1, int(chunk_duration_s * fs))
    sha1 = hashlib.sha1()
    with open(bin_path, "wb") as f:
        for start in range(0, num_samples, chunk):
            stop = min(start + chunk, num_samples)
            traces_uv = recording.get_traces(start_frame=start, end_frame=stop, return_in_uV=False)
            counts = np.clip(np.round(traces_uv / model.uv_per_bit), -model.max_int, model.max_int - 1)
            sync = ((np.arange(start, stop) // int(fs / 2)) % 2 * 64).astype("int16")
            block = np.empty((stop - start, num_channels + 1), dtype="int16")
            block[:, :num_channels] = counts
            block[:, num_channels] = sync
            data = block.tobytes()
            sha1.update(data)
            f.write(data)
    shank_ids = [sh for sh, _ in readout_electrodes(part_number, num_channels, num_shanks_used)[:num_channels]]
    lines = _meta_lines(part_number, num_shanks_used, bin_path, num_channels, num_samples, fs,
                        recording.get_channel_locations(), shank_ids, sha1.hexdigest().upper(),
                        bin_path.stat().st_size)
    bin_path.with_suffix(".meta").write_text("\n".join(lines) + "\n")
    return bin_path


# --------------------------------------------------------------------------------------------------------------
# Finding and opening sessions
# --------------------------------------------------------------------------------------------------------------
_GATE_FOLDER = re.compile(r"_g\d+$")

#: SpikeGLX streams found but not sorted, by file-name suffix.
NOT_SORTED = {".lf.bin": "LF band (not sorted)", ".nidq.bin": "NI-DAQ auxiliary channels (not sorted)",
              ".obx.bin": "OneBox ADC channels (not sorted)"}


def session_root(path: Path, data_dir: Path) -> Path:
    """The session folder of a SpikeGLX file below ``data_dir``: the nearest ``<run>_g<N>`` folder, else the probe
    folder's parent (for ``*_imec<N>`` folders), else the file's own folder."""
    for parent in path.parents:
        if _GATE_FOLDER.search(parent.name):
            return parent
        if parent == data_dir:
            break
    folder = path.parent
    return folder.parent if re.search(r"_imec\d+$", folder.name) and folder != data_dir else folder


def find_sessions(data_dir: Path) -> list[Path]:
    """Every SpikeGLX session folder under ``data_dir`` (any depth), found from its AP files."""
    files = list(data_dir.rglob("*.ap.bin")) + list(data_dir.rglob("*.ap.meta"))
    return sorted({session_root(f, data_dir) for f in files})


def unsorted_files(session_dir: Path) -> list[dict[str, str]]:
    """SpikeGLX files left out on purpose, with the reason (reported, never an error)."""
    found = []
    for path in sorted(session_dir.rglob("*.bin")):
        reason = next((r for suffix, r in NOT_SORTED.items() if path.name.endswith(suffix)), None)
        if reason:
            found.append({"path": str(path), "reason": reason})
    return found


def open_session(session_dir: Path) -> OpenedSession:
    """Check and open every AP stream of one SpikeGLX session.

    Parameters
    ----------
    session_dir : Path
        A session folder (see :func:`find_sessions`).

    Returns
    -------
    candidates : list of StreamCandidate
    problems : list of dict
        ``{"path", "error"}`` for each unusable file or stream; the others are still returned.
    not_sorted : list of dict
        LF, NIDQ and OneBox files, left out on purpose, with the reason.
    """
    import spikeinterface.extractors as se

    checked, problems = [], []
    for bin_path in sorted(session_dir.rglob("*.ap.bin")):
        try:
            checked.append(check_ap_stream(bin_path))
        except InputError as exc:
            problems.append({"path": str(bin_path), "error": str(exc)})
    for meta_path in sorted(session_dir.rglob("*.ap.meta")):
        if not meta_path.with_suffix(".bin").exists():
            problems.append({
                "path": str(meta_path),
                "error": f"{meta_path} has no data file: expected {meta_path.with_suffix('.bin').name} beside it. "
                "Copy the .bin from the acquisition machine, or remove the stray .meta.",
            })
    groups: dict[tuple[Path, str], list[APStreamFiles]] = {}
    for files in checked:
        groups.setdefault((files.bin_path.parent, files.stream_id), []).append(files)
    candidates = []
    for (folder, stream_id), files in sorted(groups.items()):
        try:
            recording = se.read_spikeglx(folder, stream_id=stream_id)
            if not recording.has_probe():
                raise InputError("no probe geometry could be read: check imroTbl and imDatPrb_pn in its .meta")
        except Exception as exc:  # one unreadable stream must not stop the others
            problems.append({"path": str(folder), "error": f"cannot open SpikeGLX stream {stream_id} in {folder}: {exc}"})
            continue
        candidates.append(StreamCandidate(
            stream_id=stream_id,
            recording=recording,
            block_index=0,
            files=[p for f in files for p in (f.bin_path, f.meta_path)],
            probe_part_number=files[0].probe_part_number,
        ))
    return candidates, problems, unsorted_files(session_dir)
