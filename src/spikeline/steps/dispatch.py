"""Dispatch: find the streams under a data folder and write one job per stream.

For now the data folder is one SpikeGLX session. Every ``*.ap.bin`` is checked against its ``.meta`` before
SpikeInterface opens it; LF, NIDQ, SYNC and OneBox streams are not sorted. A stream whose files are unusable
becomes a *problem* with a message that names the file and says what to do; the other streams still run.

Each job (``jobs/<stream>.json``) holds a SpikeInterface recording recipe (``to_dict``, absolute paths to the
raw files) plus fingerprints of those files, so a changed raw file changes the job and everything after it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..formats.spikeglx import APStreamFiles, check_ap_stream
from ..layout import ResultsLayout, safe_name, stream_name
from ..provenance import atomic_write_json, file_fingerprint, now_iso, read_json

logger = logging.getLogger("spikeline")


def _to_json_dict(recording) -> dict[str, Any]:
    from spikeinterface.core.core_tools import SIJsonEncoder

    return json.loads(json.dumps(recording.to_dict(recursive=True), cls=SIJsonEncoder))


def find_spikeglx_ap_files(data_dir: Path) -> tuple[list[APStreamFiles], list[dict[str, str]]]:
    """Check every AP file pair under ``data_dir``.

    Parameters
    ----------
    data_dir : Path
        Folder searched recursively.

    Returns
    -------
    streams : list of APStreamFiles
        The usable AP file pairs.
    problems : list of dict
        ``{"path": ..., "error": ...}`` for each unusable file.
    """
    streams, problems = [], []
    for bin_path in sorted(data_dir.rglob("*.ap.bin")):
        try:
            streams.append(check_ap_stream(bin_path))
        except InputError as exc:
            problems.append({"path": str(bin_path), "error": str(exc)})
    for meta_path in sorted(data_dir.rglob("*.ap.meta")):
        if not meta_path.with_suffix(".bin").exists():
            problems.append({
                "path": str(meta_path),
                "error": f"{meta_path} has no data file: expected {meta_path.with_suffix('.bin').name} beside it. "
                "Copy the .bin from the acquisition machine, or remove the stray .meta.",
            })
    return streams, problems


#: SpikeGLX streams that are found but not sorted, by file-name suffix.
NOT_SORTED = {".lf.bin": "LF band (not sorted)", ".nidq.bin": "NI-DAQ auxiliary channels (not sorted)",
              ".obx.bin": "OneBox ADC channels (not sorted)"}


def find_unsorted_streams(data_dir: Path) -> list[dict[str, str]]:
    """SpikeGLX files that dispatch leaves out on purpose, with the reason (reported, never an error)."""
    found = []
    for path in sorted(data_dir.rglob("*.bin")):
        reason = next((r for suffix, r in NOT_SORTED.items() if path.name.endswith(suffix)), None)
        if reason:
            found.append({"path": str(path), "reason": reason})
    return found


def _jobs_for_folder(folder: Path, stream_id: str, files: list[APStreamFiles], session: str) -> list[dict]:
    """Open one AP stream with SpikeInterface and make one job per segment (gate/trigger)."""
    import spikeinterface.extractors as se

    recording = se.read_spikeglx(folder, stream_id=stream_id)
    if recording.get_probegroup() is None:
        raise InputError(
            f"no probe geometry could be read for {stream_id} in {folder}: check imroTbl and imDatPrb_pn in "
            "its .meta."
        )
    jobs = []
    for segment_index in range(recording.get_num_segments()):
        segment = recording.select_segments([segment_index]) if recording.get_num_segments() > 1 else recording
        jobs.append({
            "session": session,
            "stream": stream_name(0, stream_id, segment_index),
            "format": "spikeglx",
            "stream_id": stream_id,
            "block_index": 0,
            "segment_index": segment_index,
            "num_channels": segment.get_num_channels(),
            "sampling_frequency_hz": segment.sampling_frequency,
            "duration_s": round(segment.get_total_duration(), 6),
            "probe_part_number": files[0].probe_part_number,
            "files": [file_fingerprint(p) for f in files for p in (f.bin_path, f.meta_path)],
            "recording": _to_json_dict(segment),
        })
    return jobs


def discover_jobs(data_dir: Path) -> tuple[list[dict], list[dict[str, str]]]:
    """Find the jobs of one SpikeGLX session folder.

    Parameters
    ----------
    data_dir : Path
        The session folder.

    Returns
    -------
    jobs : list of dict
        One job per AP stream and segment.
    problems : list of dict
        Files or streams that cannot be used, each with its error message.

    Raises
    ------
    InputError
        If ``data_dir`` is not a readable folder or holds no SpikeGLX AP stream at all.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"data folder {data_dir} does not exist or is not a folder.")
    session = safe_name(data_dir.name)
    ap_files, problems = find_spikeglx_ap_files(data_dir)
    groups: dict[tuple[Path, str], list[APStreamFiles]] = {}
    for files in ap_files:
        groups.setdefault((files.bin_path.parent, files.stream_id), []).append(files)
    jobs = []
    for (folder, stream_id), files in sorted(groups.items()):
        try:
            jobs.extend(_jobs_for_folder(folder, stream_id, files, session))
        except Exception as exc:  # a reader failure on one stream must not stop the others
            problems.append({"path": str(folder), "error": f"cannot open {stream_id} in {folder}: {exc}"})
    if not jobs and not problems:
        raise InputError(
            f"no SpikeGLX AP stream (*.ap.bin with its .ap.meta) was found under {data_dir}. Point spikeline at "
            "the session folder that holds the <run>_g0 folders or the .bin/.meta files."
        )
    return jobs, problems


def write_jobs(layout: ResultsLayout, data_dir: Path, jobs: list[dict], problems: list[dict]) -> None:
    """Write each job file (only when its content changed) and the dispatch record."""
    for job in jobs:
        path = layout.job_file(job["stream"])
        if read_json(path) != json.loads(json.dumps(job)):
            atomic_write_json(path, job)
    atomic_write_json(layout.dispatch_record, {
        "name": "dispatch",
        "data_dir": str(Path(data_dir).absolute()),
        "time": now_iso(),
        "streams": [
            {k: job[k] for k in ("stream", "stream_id", "num_channels", "duration_s", "probe_part_number")}
            for job in jobs
        ],
        "problems": problems,
        "not_sorted": find_unsorted_streams(Path(data_dir)),
    })
    for problem in problems:
        logger.error("dispatch: %s", problem["error"])
