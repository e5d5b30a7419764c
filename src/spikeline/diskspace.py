"""Free space on the results disk: what each step is expected to write, the check before a step, and the message
when a disk fills up during one.

A step's expected size is a multiple of its stream's size as 16-bit samples (channels x samples x 2 bytes, from the
job that dispatch wrote), taken from the table below. Measured here on a synthetic NP1.0 stream (16 channels, 10 s,
9.6 MB as int16, Kilosort4): preprocessed binary 9.8 MB (1.0x), sorting with the sorter's folder 1.6 MB (0.16x),
analyzer 4.8 MB (0.5x, mostly fixed costs: waveforms of up to 500 spikes per unit), curated 0.3 MB, figures
0.25 MB. The factors are floors, so the check refuses only what surely cannot fit; a step that still fills the disk
fails with :class:`DiskFull`'s message and leaves nothing a rerun trusts.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

from .errors import SpikelineError

#: Bytes a step writes, as a multiple of its stream's 16-bit size (a group step: of its members' total).
STEP_SIZE_FACTORS = {
    "preprocess": 1.0,   # the preprocessed binary (int16), plus motion files
    "sort": 0.15,        # the sorting and the sorter's own folder (Kilosort4 keeps no copy of the traces)
    "postprocess": 0.1,  # (without a sort record to count spikes; else :func:`analyzer_bytes`)
    "curate": 0.01,      # the curated sorting (a copy of the spike trains) and its tables
    "visualize": 0.0,    # a few PNG figures (the minimum below)
    "export_phy": 0.1,   # Phy's arrays (amplitudes, features of sparse channels)
    "nwb": 0.05,         # units table with waveforms (raw or LFP series add their own size, below)
}
#: Minimum expected size of any step, in bytes (figures, JSON records, the step log).
STEP_MIN_BYTES = 1 << 20
#: Bytes per sample of the size estimates (the int16 format of the raw and preprocessed traces).
SAMPLE_BYTES = 2

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXT = ("No space left on device", "Disk quota exceeded")


class DiskFull(SpikelineError):
    """The results disk has (or had) less free space than a step needs.

    Parameters
    ----------
    path : Path
        Where the step writes.
    free_bytes : int
        Free space on that disk now.
    needed_bytes : int
        What the step is expected to write.
    during_step : bool
        True when the disk filled up while the step ran (``needed_bytes`` is then a floor: the larger of the
        estimate and the free space the step started with), False when it was refused before it started.
    """

    def __init__(self, path: Path, free_bytes: int, needed_bytes: int, during_step: bool):
        self.path, self.free_bytes, self.needed_bytes = Path(path), int(free_bytes), int(needed_bytes)
        self.mount_point = mount_point(self.path)
        if during_step:
            how = "the disk filled up while the step was writing"
            need = f"the step needs more than that: at least {human_bytes(self.needed_bytes)}"
        else:
            how = "not enough free space to start the step"
            need = f"the step needs about {human_bytes(self.needed_bytes)}"
        missing = human_bytes(max(self.needed_bytes - self.free_bytes, 1 << 20))
        super().__init__(
            f"no space left on the results disk: {how}. {self.path} is on the filesystem mounted at "
            f"{self.mount_point}, which has {human_bytes(self.free_bytes)} free; {need} (estimated from the "
            f"stream's size and spikes). Free at least {missing} on {self.mount_point}, or choose a --results folder "
            "on a larger disk, then run again: finished steps are reused and nothing of this step was kept."
        )


def human_bytes(num_bytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``: bytes in the largest binary unit that keeps the number at or above 1."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem holding ``path`` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Free bytes for an ordinary user on the disk holding ``path`` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def stream_bytes(job_file: Path) -> int:
    """Size of a stream as 16-bit samples, from its job file (0 when it cannot be read)."""
    try:
        job = json.loads(Path(job_file).read_text())
        num_samples = float(job["duration_s"]) * float(job["sampling_frequency_hz"])
        return int(num_samples * int(job["num_channels"]) * SAMPLE_BYTES)
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def expected_step_bytes(step: str, job_files: list[Path], write_raw: bool = False, write_lfp: bool = False) -> int:
    """Bytes ``step`` is expected to write for the streams of ``job_files``.

    Parameters
    ----------
    step : str
        Step name (a key of :data:`STEP_SIZE_FACTORS`; others get the minimum).
    job_files : list of Path
        The job file of the stream (one) or of each member of a group.
    write_raw, write_lfp : bool
        For the NWB step: whether raw traces (1x) or the LFP series (1/12x) are written too.

    Returns
    -------
    int
    """
    total = sum(stream_bytes(job) for job in job_files)
    factor = STEP_SIZE_FACTORS.get(step, 0.0)
    if step == "nwb":
        factor += (1.0 if write_raw else 0.0) + (0.1 if write_lfp else 0.0)
    return max(int(total * factor), STEP_MIN_BYTES)


#: Channels each stored waveform is assumed to span, at most (SpikeInterface pads sparse waveforms to the largest
#: unit's channel count; 16 is below what a 100 um radius covers on Neuropixels, so the estimate stays a floor).
WAVEFORM_CHANNELS = 16
#: Bytes per spike of the per-spike extensions (amplitudes, locations, amplitude scalings, PCA projections).
PER_SPIKE_BYTES = 64


def analyzer_bytes(num_spikes: int, num_units: int, max_spikes_per_unit: int, waveform_ms: float,
                   sampling_frequency_hz: float, num_channels: int) -> int:
    """Bytes a SortingAnalyzer is expected to write: the stored waveforms (float32, memory-mapped while they are
    written) plus the per-spike extensions.

    Parameters
    ----------
    num_spikes, num_units : int
        Of the sorting (from the sort step's record).
    max_spikes_per_unit : int
        ``random_spikes``' sample size.
    waveform_ms : float
        ``ms_before + ms_after`` of the waveforms extension (0 without it).
    sampling_frequency_hz : float
    num_channels : int
        Of the recording (at most :data:`WAVEFORM_CHANNELS` are counted per waveform).

    Returns
    -------
    int
    """
    sampled = min(num_spikes, num_units * max_spikes_per_unit)
    samples = int(waveform_ms * sampling_frequency_hz / 1000)
    waveforms = sampled * samples * min(num_channels, WAVEFORM_CHANNELS) * 4
    return int(waveforms + num_spikes * PER_SPIKE_BYTES)


def check_free_space(path: Path, needed_bytes: int) -> None:
    """Refuse to start writing ``needed_bytes`` under ``path`` when its disk has less free.

    Raises
    ------
    DiskFull
    """
    free = free_bytes(path)
    if free < needed_bytes:
        raise DiskFull(path, free, needed_bytes, during_step=False)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from or during, is a full disk (ENOSPC, EDQUOT).

    Errors that crossed a process boundary (a worker pool) are recognised by their message.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFull) or (isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS):
            return True
        if any(text in str(exc) for text in _FULL_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
