"""Where every session, stream and step of a results folder stands, read from the step records alone.

Used by ``spikeline status RESULTS_DIR`` and by the end-of-run summary. A step is

- ``pending``: no record yet;
- ``running``: its record says so and its process (local run holding the lock, or SLURM job) is alive;
- ``done`` or ``skipped``: finished (a skip ends the stream, with its reason);
- ``failed``: it raised, or its process or SLURM job ended before it finished (``interrupted``), with the
  reason and the log to read.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import PipelineConfig, build_config
from .errors import ConfigError
from .layout import ResultsLayout, export_group
from .provenance import STATUS_OK, STATUS_RUNNING, STATUS_SKIPPED, read_json
from .steps import SESSION_STEPS, STEPS

PENDING, RUNNING, DONE, SKIPPED, FAILED = "pending", "running", "done", "skipped", "failed"
_ALIVE_SLURM_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED"}


@dataclass
class StepStatus:
    """One step of one stream (or group, for session-level steps)."""

    step: str
    state: str
    reason: str | None = None
    log: str | None = None
    slurm_job_id: str | None = None
    duration_s: float | None = None


@dataclass
class StreamStatus:
    """One stream of one session, step by step."""

    session: str
    stream: str
    steps: list[StepStatus] = field(default_factory=list)
    num_units: int | None = None
    num_units_passing_qc: int | None = None

    @property
    def state(self) -> str:
        """The stream's state: its first failed, running, skipped or pending step decides."""
        for state in (FAILED, RUNNING, SKIPPED, PENDING):
            if any(s.state == state for s in self.steps):
                return state
        return DONE

    @property
    def reason(self) -> str | None:
        """Why the stream failed or was skipped, as ``step: reason``."""
        for s in self.steps:
            if s.state in (FAILED, SKIPPED):
                return f"{s.step}: {s.reason}"
        return None

    @property
    def log(self) -> str | None:
        """The log of the failed step, if any."""
        return next((s.log for s in self.steps if s.state == FAILED), None)


def find_sessions(results_dir: Path) -> dict[str, ResultsLayout]:
    """Session name -> layout under a results folder: the folder itself when it is one session, else each
    sub-folder holding ``jobs/``."""
    results_dir = Path(results_dir)
    if ResultsLayout(results_dir).jobs_dir.is_dir():
        return {results_dir.name: ResultsLayout(results_dir)}
    return {p.name: ResultsLayout(p) for p in sorted(results_dir.iterdir())
            if p.is_dir() and ResultsLayout(p).jobs_dir.is_dir()}


def run_config(layout: ResultsLayout) -> PipelineConfig:
    """The configuration the last run used (from ``processing.json``), or the defaults."""
    document = read_json(layout.processing_json) or {}
    try:
        return build_config(document.get("config") or {})
    except ConfigError:
        return build_config()


def _lock_held(layout: ResultsLayout) -> bool:
    """Whether a run holds the results folder's lock (the session's or the top-level one)."""
    for lock in (layout.lock_file, layout.root.parent / layout.lock_file.name):
        if not lock.exists():
            continue
        with open(lock, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def step_status(step: str, record: dict[str, Any] | None, layout: ResultsLayout,
                slurm_states: dict[str, str | None] | None = None) -> StepStatus:
    """Read one step record into a :class:`StepStatus` (a ``running`` record whose process is gone is failed)."""
    from .cluster.submit import slurm_state

    if record is None:
        return StepStatus(step, PENDING)
    job_id = (record.get("machine") or {}).get("slurm_job_id")
    common = {"log": record.get("log"), "slurm_job_id": job_id, "duration_s": record.get("duration_s")}
    status = record.get("status")
    if status == STATUS_OK:
        return StepStatus(step, DONE, **common)
    if status == STATUS_SKIPPED:
        return StepStatus(step, SKIPPED, record.get("reason"), **common)
    if status == STATUS_RUNNING:
        if job_id:
            states = slurm_states if slurm_states is not None else {}
            state = states[job_id] if job_id in states else states.setdefault(job_id, slurm_state(job_id))
            if state is None or state in _ALIVE_SLURM_STATES:
                return StepStatus(step, RUNNING, f"SLURM job {job_id}", **common)
            return StepStatus(step, FAILED, f"interrupted: SLURM job {job_id} ended {state}", **common)
        if _lock_held(layout):
            return StepStatus(step, RUNNING, None, **common)
        return StepStatus(step, FAILED, "interrupted: the run stopped before this step finished; rerun to resume",
                          **common)
    return StepStatus(step, FAILED, record.get("reason") or record.get("error"), **common)


def stream_status(session: str, stream: str, layout: ResultsLayout, config: PipelineConfig,
                  slurm_states: dict[str, str | None] | None = None) -> StreamStatus:
    """Every enabled per-stream step of one stream, up to the first one that did not finish ``ok``."""
    result = StreamStatus(session=session, stream=stream)
    for step in STEPS:
        if not step.enabled(config):
            continue
        record = read_json(layout.step_record(step.name, stream))
        status = step_status(step.name, record, layout, slurm_states)
        result.steps.append(status)
        if status.state == DONE:
            outputs = (record or {}).get("outputs") or {}
            result.num_units = outputs.get("num_units", result.num_units)
            result.num_units_passing_qc = outputs.get("num_units_passing_qc", result.num_units_passing_qc)
    return result


def session_step_status(session: str, layout: ResultsLayout, config: PipelineConfig,
                        slurm_states: dict[str, str | None] | None = None) -> list[StreamStatus]:
    """Session-level steps (NWB), one row per group of streams."""
    rows = []
    for step in SESSION_STEPS:
        if not step.enabled(config):
            continue
        for group in sorted({export_group(stream) for stream in layout.streams()}):
            record = read_json(layout.step_record(step.name, group))
            rows.append(StreamStatus(session, group, [step_status(step.name, record, layout, slurm_states)]))
    return rows


def collect_status(results_dir: Path) -> list[StreamStatus]:
    """Every stream and session-level group under a results folder, with its steps' states."""
    rows: list[StreamStatus] = []
    slurm_states: dict[str, str | None] = {}
    for session, layout in find_sessions(results_dir).items():
        config = run_config(layout)
        rows.extend(stream_status(session, stream, layout, config, slurm_states) for stream in layout.streams())
        rows.extend(session_step_status(session, layout, config, slurm_states))
    return rows


def format_status(rows: list[StreamStatus]) -> str:
    """The table ``spikeline status`` prints: one line per stream, failures with reason and log, then totals."""
    if not rows:
        return "no sessions found (a results folder holds jobs/ for each session)"
    lines = [f"{'session':<24} {'stream':<34} {'state':<8} {'units':>5} {'pass QC':>7}  steps"]
    for row in rows:
        steps = " ".join(f"{s.step}:{s.state}" for s in row.steps)
        units = "" if row.num_units is None else str(row.num_units)
        passing = "" if row.num_units_passing_qc is None else str(row.num_units_passing_qc)
        lines.append(f"{row.session:<24} {row.stream:<34} {row.state:<8} {units:>5} {passing:>7}  {steps}")
        if row.state in (FAILED, SKIPPED):
            lines.append(f"{'':<24}   {row.state}: {row.reason}")
            if row.state == FAILED and row.log:
                lines.append(f"{'':<24}   log: {row.log}")
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.state] = totals.get(row.state, 0) + 1
    lines.append("")
    lines.append("total: " + ", ".join(f"{totals.get(state, 0)} {state}"
                                       for state in (DONE, RUNNING, PENDING, SKIPPED, FAILED)))
    return "\n".join(lines)

