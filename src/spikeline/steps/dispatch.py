"""Dispatch: find the sessions and streams under a data folder and write one job per stream.

Sessions are found at any depth: a SpikeGLX ``<run>_g<N>`` folder (or a folder of ``.ap.bin``/``.ap.meta``
files), an Open Ephys folder of record nodes, an AIND session (``ecephys/ecephys_clipped``), an NWB file, or a
folder with a ``spikeline_input.yaml`` naming any SpikeInterface reader. Each session is named by its path relative to the data folder. Every stream is checked
before it is opened; an unusable file becomes a *problem* whose message names the file and says what to do,
and the other streams still run. Streams left out on purpose (LF, NIDQ, SYNC, OneBox, series below 10 kHz,
shorter than ``min_duration_s``) are listed with their reason.

Fan-out: one job per block x stream x segment (``split_segments``; otherwise segments are concatenated) and,
with ``split_groups``, per channel group (shank). ``debug`` clips every job to ``debug_duration_s``.

Each job (``jobs/<stream>.json``) holds a SpikeInterface recording recipe (``to_dict``, absolute paths to the
raw files) plus fingerprints of those files, so a changed raw file changes the job and everything after it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DispatchParams
from ..errors import InputError
from ..formats import StreamCandidate, aind, custom, nwb, openephys, spikeglx
from ..layout import ResultsLayout, safe_name, stream_name
from ..provenance import atomic_write_json, file_fingerprint, now_iso, read_json

logger = logging.getLogger("spikeline")

#: Input formats, each a module with ``find_sessions`` and ``open_session``; ``auto`` tries them all, in this order,
#: and a session found inside another one (an AIND session's clipped Open Ephys folder) belongs to the outer one.
FORMATS = {"spikeinterface": custom, "aind": aind, "spikeglx": spikeglx, "openephys": openephys, "nwb": nwb}


@dataclass
class SessionPlan:
    """What dispatch found in one session.

    Attributes
    ----------
    name : str
        Session name (folder-safe), used for its results folder.
    format : str
        Input format.
    path : Path
        Session folder or file.
    jobs : list of dict
        One per stream to process.
    problems : list of dict
        Unusable inputs, each ``{"path", "error"}``.
    not_sorted : list of dict
        Inputs left out on purpose, each ``{"path", "reason"}``.
    """

    name: str
    format: str
    path: Path
    jobs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    not_sorted: list[dict[str, str]] = field(default_factory=list)


def _to_json_dict(recording) -> dict[str, Any]:
    from spikeinterface.core.core_tools import SIJsonEncoder

    return json.loads(json.dumps(recording.to_dict(recursive=True), cls=SIJsonEncoder))


def session_name(data_dir: Path, path: Path) -> str:
    """Name a session by its path relative to the data folder (the folder's own name at the top)."""
    relative = path.relative_to(data_dir) if path != data_dir and data_dir in path.parents else Path(path.name)
    parts = list(relative.parts) or [data_dir.name]
    if path.is_file():
        parts[-1] = Path(parts[-1]).stem
    return safe_name("_".join(parts))


def find_sessions(data_dir: Path, input_format: str = "auto") -> list[tuple[str, Path]]:
    """(format, path) of every session under ``data_dir``.

    Raises
    ------
    InputError
        If ``data_dir`` is missing, unreadable, or holds no session of the requested format(s).
    """
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise InputError(f"data folder {data_dir} does not exist or is not a folder.")
    formats = FORMATS if input_format == "auto" else {input_format: FORMATS[input_format]}
    if data_dir.is_file():
        if data_dir.suffix == ".nwb" and "nwb" in formats:
            return [("nwb", data_dir)]
        raise InputError(f"{data_dir} is a file; give the folder that holds the session(s), or an .nwb file.")
    sessions: list[tuple[str, Path]] = []
    for name, module in formats.items():
        for path in module.find_sessions(data_dir):
            if not any(other == path or other in path.parents for _, other in sessions):
                sessions.append((name, path))
    sessions.sort(key=lambda item: str(item[1]))
    if not sessions:
        looked_for = {"spikeglx": "SpikeGLX *.ap.bin/*.ap.meta", "nwb": "NWB *.nwb files",
                      "spikeinterface": "spikeline_input.yaml/.json files",
                      "openephys": "Open Ephys structure.oebin", "aind": "AIND ecephys/ecephys_clipped folders"}
        raise InputError(
            f"no recording was found under {data_dir} (looked for: "
            f"{', '.join(looked_for[f] for f in formats)}). Point spikeline at the folder that holds your sessions, "
            "or choose the format with --input."
        )
    return sessions


def _clip(recording, duration_s: float):
    """The first ``duration_s`` of every segment."""
    from spikeinterface.core import append_recordings, split_recording

    num_frames = int(round(duration_s * recording.sampling_frequency))
    if recording.get_num_segments() == 1:
        return recording.frame_slice(0, num_frames)
    return append_recordings([segment.frame_slice(0, num_frames) for segment in split_recording(recording)])


#: Timestamp checks (as in the AIND job dispatch): backwards steps, gaps, repeated samples.
MAX_GAP_S = 0.002
MAX_BACKWARD_STEPS = 10
MAX_ZERO_STEP_FRACTION = 0.02


def timestamp_problem(recording) -> str | None:
    """Why a recording's time vector cannot be trusted, or None (also when it has no time vector)."""
    import numpy as np

    for segment_index in range(recording.get_num_segments()):
        if not recording.has_time_vector(segment_index=segment_index):
            continue
        steps = np.diff(recording.get_times(segment_index=segment_index))
        period = 1.0 / recording.sampling_frequency
        backward = int(np.sum(steps < 0))
        gaps = int(np.sum(steps > period + MAX_GAP_S))
        zero_fraction = float(np.mean(steps == 0)) if len(steps) else 0.0
        if backward > MAX_BACKWARD_STEPS or gaps or zero_fraction >= MAX_ZERO_STEP_FRACTION:
            return (f"segment {segment_index}: {backward} backward step(s), {gaps} gap(s) longer than "
                    f"{MAX_GAP_S * 1e3:g} ms, {zero_fraction:.1%} repeated timestamps")
    return None


NUM_FINITE_CHECK_CHUNKS = 20


def non_finite_problem(recording) -> str | None:
    """For float data: whether sampled chunks (20 x 1 s per segment) hold NaN or inf samples."""
    import numpy as np
    from spikeinterface.core import get_random_data_chunks

    if recording.get_dtype().kind != "f":
        return None  # integer samples cannot be NaN or inf
    chunk_size = min(int(recording.sampling_frequency), recording.get_num_samples(segment_index=0))
    chunks = get_random_data_chunks(recording, num_chunks_per_segment=NUM_FINITE_CHECK_CHUNKS,
                                    chunk_size=chunk_size, seed=0, return_in_uV=False)
    bad = ~np.isfinite(chunks)
    if not bad.any():
        return None
    channels = [str(c) for c in np.asarray(recording.channel_ids)[bad.any(axis=0)]]
    return f"{int(bad.sum())} non-finite samples (NaN or inf) in the sampled data, on channel(s) {channels[:8]}"


def _probe_model(recording) -> str | None:
    """The probe's part number or model name, when the reader annotated it."""
    annotations = recording.get_probegroup().probes[0].annotations
    return annotations.get("part_number") or annotations.get("model_name") or None


def fan_out(candidate: StreamCandidate, session: str, fmt: str, params: DispatchParams) -> tuple[list[dict], list[dict]]:
    """Jobs of one stream (per segment, per group), debug-clipped, and the parts skipped as too short.

    Parameters
    ----------
    candidate : StreamCandidate
        The opened stream.
    session : str
        Session name.
    fmt : str
        Input format.
    params : DispatchParams
        Fan-out options.

    Returns
    -------
    jobs : list of dict
    skipped : list of dict
        ``{"path", "reason"}`` per part left out (shorter than ``min_duration_s`` or the debug duration).
    """
    import numpy as np
    from spikeinterface.core import concatenate_recordings

    recording = candidate.recording
    bad_samples = non_finite_problem(recording)
    if bad_samples:
        raise InputError(f"{candidate.files[0]} ({candidate.stream_id}) has {bad_samples}. Filters and sorters cannot "
                         "use such data: fix or re-export the file (e.g. replace gaps with zeros) before sorting.")
    problem = timestamp_problem(recording)
    if problem and params.timestamps == "fail":
        raise InputError(f"{candidate.files[0]} ({candidate.stream_id}) has irregular timestamps: {problem}. Rerun with "
                         "timestamps 'reset' (--reset-timestamps) to sort it on a regular clock from its first sample.")
    if problem:
        logger.warning("%s (%s): timestamps reset: %s", candidate.files[0], candidate.stream_id, problem)
        recording.reset_times()  # in place, on this dispatch's own reader object; the job records why
    if params.split_segments or recording.get_num_segments() == 1:
        segments = [(i, recording.select_segments([i])) if recording.get_num_segments() > 1 else (i, recording)
                    for i in range(recording.get_num_segments())]
    else:
        segments = [(0, concatenate_recordings([recording.select_segments([i])
                                                 for i in range(recording.get_num_segments())]))]
    part_number = candidate.probe_part_number or _probe_model(recording)
    jobs, skipped = [], []
    for segment_index, segment in segments:
        groups = np.unique(segment.get_channel_groups())
        parts = segment.split_by("group") if params.split_groups and len(groups) > 1 else {None: segment}
        for group_index, (group, part) in enumerate(parts.items()):
            name = stream_name(candidate.block_index, candidate.stream_id, segment_index)
            if group is not None:
                name = f"{name}_group{group_index}"
            duration_s = part.get_total_duration()
            where = f"{candidate.files[0]} ({name})"
            if params.debug:
                if duration_s < params.debug_duration_s:
                    skipped.append({"path": where, "reason": f"{duration_s:.1f} s long, shorter than the debug "
                                    f"duration {params.debug_duration_s:g} s: lower --debug-duration or drop --debug"})
                    continue
                part, duration_s = _clip(part, params.debug_duration_s), params.debug_duration_s
            if duration_s < params.min_duration_s:
                skipped.append({"path": where, "reason": f"{duration_s:.1f} s long, shorter than "
                                f"min_duration_s={params.min_duration_s:g}"})
                continue
            jobs.append({
                "session": session,
                "stream": name,
                "format": fmt,
                "stream_id": candidate.stream_id,
                "block_index": candidate.block_index,
                "segment_index": segment_index,
                "group": None if group is None else str(group),
                "num_channels": part.get_num_channels(),
                "sampling_frequency_hz": part.sampling_frequency,
                "duration_s": round(duration_s, 6),
                "debug_clipped": params.debug,
                "timestamps_reset": problem,
                "probe_part_number": part_number,
                "files": [file_fingerprint(p) for p in candidate.files],
                "recording": _to_json_dict(part),
            })
    return jobs, skipped


def plan_sessions(data_dir: Path, params: DispatchParams) -> list[SessionPlan]:
    """Find every session under ``data_dir`` and its jobs, problems and skipped inputs.

    Parameters
    ----------
    data_dir : Path
        Data folder (any depth of session folders), or one NWB file.
    params : DispatchParams
        Input format and fan-out options.

    Returns
    -------
    list of SessionPlan
        In path order; session names are unique.
    """
    data_dir = Path(data_dir).absolute()
    plans, names = [], set()
    for fmt, path in find_sessions(data_dir, params.input):
        name = session_name(data_dir, path)
        while name in names:
            name = f"{name}_{fmt}"
        names.add(name)
        plan = SessionPlan(name=name, format=fmt, path=path)
        candidates, plan.problems, plan.not_sorted = FORMATS[fmt].open_session(path)
        for candidate in candidates:
            try:
                jobs, skipped = fan_out(candidate, name, fmt, params)
            except InputError as exc:
                plan.problems.append({"path": str(candidate.files[0]), "error": str(exc)})
                continue
            plan.jobs.extend(jobs)
            plan.not_sorted.extend(skipped)
        plans.append(plan)
    return plans


def discover_jobs(data_dir: Path, params: DispatchParams | None = None) -> tuple[list[dict], list[dict[str, str]]]:
    """All jobs and problems under ``data_dir`` (every session together); see :func:`plan_sessions`."""
    plans = plan_sessions(data_dir, params or DispatchParams())
    return [j for p in plans for j in p.jobs], [q for p in plans for q in p.problems]


def write_jobs(layout: ResultsLayout, data_dir: Path, plan: SessionPlan) -> None:
    """Write each job file of one session (only when its content changed) and the dispatch record."""
    for job in plan.jobs:
        path = layout.job_file(job["stream"])
        if read_json(path) != json.loads(json.dumps(job)):
            atomic_write_json(path, job)
    atomic_write_json(layout.dispatch_record, {
        "name": "dispatch",
        "data_dir": str(Path(data_dir).absolute()),
        "session": plan.name,
        "format": plan.format,
        "session_path": str(plan.path),
        "time": now_iso(),
        "streams": [
            {k: job[k] for k in ("stream", "stream_id", "num_channels", "duration_s", "probe_part_number")}
            for job in plan.jobs
        ],
        "problems": plan.problems,
        "not_sorted": plan.not_sorted,
    })
    for problem in plan.problems:
        logger.error("dispatch: %s", problem["error"])
