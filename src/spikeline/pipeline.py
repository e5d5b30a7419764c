"""The pipeline, as a table of contents.

``run_pipeline`` takes a data folder to a results folder:

1. dispatch     find sessions and streams, write one job per stream    (:mod:`spikeline.steps.dispatch`)
2. preprocess   phase shift, filter, bad channels, CMR/destripe, motion (:mod:`spikeline.steps.preprocess`)
3. sort         Kilosort4 (default) or another sorter, SpikeInterface   (:mod:`spikeline.steps.sort`)
4. postprocess  SortingAnalyzer with extensions and metrics            (:mod:`spikeline.steps.postprocess`)
5. curate       deduplicate, flag default_qc, unit types, merges       (:mod:`spikeline.steps.curate`)
6. visualize    drift map, motion, traces, unit yield (PNG)            (:mod:`spikeline.steps.visualize`)
7. export_phy   Phy folder per stream (optional)                       (:mod:`spikeline.steps.export_phy`)
8. nwb          one NWB file per session, block and recording          (:mod:`spikeline.steps.nwb`)
9. provenance   processing.json and data_description.json              (:mod:`spikeline.provenance`)

With ``executor="slurm"`` steps 2-8 run as one SLURM job per step per stream (:mod:`spikeline.cluster`),
each job calling :func:`run_step`: the same step code, the same resume rules.

Steps 2-7 run per stream through :func:`spikeline.steps.execute_step`, which reuses any step already done with
the same parameters and inputs. A stream that fails or is skipped never stops the others.
"""

from __future__ import annotations

import fcntl
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .cluster import ClusterProfile, check_snakemake, submit
from .cluster.submit import plan_summary
from .config import PipelineConfig, build_config
from .errors import InputError, SpikelineError, StepFailed
from .layout import ResultsLayout
from .layout import export_group
from .metadata import load_session_metadata
from .provenance import (STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, write_data_description, write_processing_json,
                         write_visualization_output)
from .steps import SESSION_STEPS, STEPS, StepContext, execute_step, step_by_name
from .steps import dispatch, nwb
from .status import session_step_status, stream_status
from .steps.base import default_progress_bar, step_state

logger = logging.getLogger("spikeline")


@dataclass
class StreamResult:
    """How one stream ended."""

    session: str
    stream: str
    status: str
    reason: str | None = None
    steps_run: list[str] = field(default_factory=list)
    steps_reused: list[str] = field(default_factory=list)
    num_units: int | None = None
    num_units_passing_qc: int | None = None
    log: str | None = None


@dataclass
class RunSummary:
    """What a run did, stream by stream."""

    results_dir: Path
    streams: list[StreamResult]
    problems: list[dict[str, str]]
    session_dirs: dict[str, Path] = field(default_factory=dict)
    session_steps: list[StreamResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no stream failed and dispatch found no unusable file."""
        return not self.problems and all(s.status != STATUS_FAILED for s in self.streams + self.session_steps)


def job_kwargs(config: PipelineConfig) -> dict[str, Any]:
    """SpikeInterface job kwargs from the ``job`` section (passed explicitly, never set globally)."""
    progress = config.job.progress_bar if config.job.progress_bar is not None else default_progress_bar()
    n_jobs = config.job.n_jobs if config.job.n_jobs > 0 else (os.cpu_count() or 1)
    return {"n_jobs": n_jobs, "chunk_duration": f"{config.job.chunk_duration_s}s", "progress_bar": progress}


def check_locations(data_dir: Path, results_dir: Path) -> None:
    """Refuse a results folder inside the raw data folder (raw data folders are never written to)."""
    data_dir, results_dir = data_dir.resolve(), results_dir.resolve()
    if results_dir == data_dir or data_dir in results_dir.parents:
        raise InputError(
            f"the results folder {results_dir} is inside the data folder {data_dir}; spikeline never writes into "
            "raw data folders. Choose a results folder outside it."
        )


@contextmanager
def results_lock(layout: ResultsLayout) -> Iterator[None]:
    """Hold an exclusive lock on the results folder so two runs never interleave their writes."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise SpikelineError(
                f"results folder {layout.root} is in use by another spikeline run ({holder}). Wait for it to "
                "finish, or choose another --results folder."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_stream(session: str, stream: str, layout: ResultsLayout, config: PipelineConfig,
               kwargs: dict[str, Any]) -> StreamResult:
    """Run the enabled per-stream steps (2-7) for one stream; stops at the first failed or skipping step."""
    result = StreamResult(session=session, stream=stream, status=STATUS_OK)
    ctx = StepContext(stream=stream, layout=layout, config=config, job_kwargs=kwargs)
    for step in STEPS:
        if not step.enabled(config):
            continue
        try:
            record = execute_step(step, ctx)
        except StepFailed as exc:
            logger.error("[%s] %s", stream, exc)
            result.steps_run.append(step.name)
            result.status, result.reason, result.log = STATUS_FAILED, f"{exc.step}: {exc.reason}", str(exc.log_path)
            return result
        (result.steps_reused if record.get("reused") else result.steps_run).append(step.name)
        if record["status"] == STATUS_SKIPPED:
            result.status, result.reason = STATUS_SKIPPED, f"{step.name}: {record.get('reason')}"
            return result
        outputs = record.get("outputs") or {}
        result.num_units = outputs.get("num_units", result.num_units)
        result.num_units_passing_qc = outputs.get("num_units_passing_qc", result.num_units_passing_qc)
    return result


def session_layouts(results_dir: Path, data_dir: Path, plans: list[dispatch.SessionPlan]) -> dict[str, ResultsLayout]:
    """Where each session's results go: RESULTS_DIR itself when DATA_DIR is one session, else RESULTS_DIR/<session>."""
    if len(plans) == 1 and plans[0].path == data_dir:
        return {plans[0].name: ResultsLayout(results_dir)}
    return {plan.name: ResultsLayout(results_dir / plan.name) for plan in plans}


def run_session_steps(session: str, layout: ResultsLayout, config: PipelineConfig, kwargs: dict[str, Any],
                      streams: list[StreamResult]) -> list[StreamResult]:
    """Run each enabled session-level step (NWB) once per group of streams that finished ``ok``."""
    groups: dict[str, list[str]] = {}
    for result in streams:
        if result.status == STATUS_OK:
            groups.setdefault(export_group(result.stream), []).append(result.stream)
    results = []
    for step in SESSION_STEPS:
        if not step.enabled(config):
            continue
        for group, members in sorted(groups.items()):
            ctx = StepContext(stream=group, layout=layout, config=config, job_kwargs=kwargs, members=tuple(members))
            result = StreamResult(session=session, stream=group, status=STATUS_OK)
            try:
                record = execute_step(step, ctx)
                (result.steps_reused if record.get("reused") else result.steps_run).append(step.name)
            except StepFailed as exc:
                logger.error("[%s] %s", group, exc)
                result.steps_run.append(step.name)
                result.status, result.reason, result.log = STATUS_FAILED, f"{exc.step}: {exc.reason}", str(exc.log_path)
            results.append(result)
    return results


def group_members(layout: ResultsLayout, group: str, config: PipelineConfig) -> tuple[str, ...]:
    """Streams of a group (block and recording) whose every enabled per-stream step is done ``ok``."""
    members = []
    for stream in layout.streams():
        if export_group(stream) != group:
            continue
        ctx = StepContext(stream=stream, layout=layout, config=config)
        if all(step_state(step, ctx) == STATUS_OK for step in STEPS if step.enabled(config)):
            members.append(stream)
    return tuple(members)


def run_step(layout: ResultsLayout, stream: str, step_name: str, config: PipelineConfig) -> dict[str, Any] | None:
    """Run one step for one stream (or, for a session-level step, one group): what one cluster job does.

    Parameters
    ----------
    layout : ResultsLayout
        The session's results folder (dispatch done).
    stream : str
        Stream name, or group name for a session-level step.
    step_name : str
        ``preprocess``, ``sort`` ... or ``nwb``.
    config : PipelineConfig
        The validated configuration.

    Returns
    -------
    dict | None
        The step record; ``None`` when there was nothing to do (an upstream step was skipped or failed, or no
        stream of the group finished).

    Raises
    ------
    StepFailed
        When the step raised (its record and log say why).
    """
    try:
        step = step_by_name(step_name)
    except KeyError as exc:
        raise SpikelineError(exc.args[0]) from None
    kwargs = job_kwargs(config)
    if step.scope == "group":
        members = group_members(layout, stream, config)
        if not members:
            logger.warning("[%s] %s: no stream of this group finished; nothing to do", stream, step_name)
            return None
        return execute_step(step, StepContext(stream=stream, layout=layout, config=config, job_kwargs=kwargs,
                                              members=members))
    ctx = StepContext(stream=stream, layout=layout, config=config, job_kwargs=kwargs)
    for upstream in STEPS[:STEPS.index(step)]:
        if upstream.enabled(config) and step_state(upstream, ctx) != STATUS_OK:
            logger.warning("[%s] %s: upstream step %s did not finish ok; nothing to do", stream, step_name,
                           upstream.name)
            return None
    return execute_step(step, ctx)


def _finish_session(layout: ResultsLayout, config_dump: dict[str, Any], metadata) -> None:
    write_processing_json(layout, config_dump)
    write_visualization_output(layout)
    write_data_description(layout, metadata)


def run_pipeline(data_dir: str | Path, results_dir: str | Path, config: PipelineConfig | None = None,
                 executor: str = "local", profile: ClusterProfile | None = None) -> RunSummary:
    """Process every stream of every session found under ``data_dir`` into ``results_dir``.

    Parameters
    ----------
    data_dir : str | Path
        A session folder, a folder of session folders at any depth, or an NWB file (never written to).
    results_dir : str | Path
        Where results go (one sub-folder per session when ``data_dir`` holds several); rerunning with the same
        folder resumes and redoes only what changed.
    config : PipelineConfig | None
        Validated configuration; ``None`` uses the defaults.
    executor : {"local", "slurm"}
        ``local`` runs every step in this process; ``slurm`` submits each step of each stream as its own SLURM
        job through Snakemake (:mod:`spikeline.cluster`) and waits for them. Both run the same step code.
    profile : ClusterProfile | None
        Partition, account, GPU and per-step resources of cluster jobs; ``None`` uses the defaults.

    Returns
    -------
    RunSummary

    Raises
    ------
    SpikelineError
        Before any work, when the configuration, the sorter, the folders or the lock are not usable.
    """
    config = config or build_config()
    data_dir = Path(data_dir).absolute()
    results_dir = Path(results_dir).absolute()
    check_locations(data_dir, results_dir)
    config.spikesorting.resolved_sorter_params()  # an unknown sorter parameter fails here, before any work
    if config.export.nwb.enabled:
        nwb.check_backend(config.export.nwb.backend)  # an unusable NWB backend fails here, before any work
    if executor != "local":
        check_snakemake(executor)
    metadata = load_session_metadata(config.export.metadata_file)  # and so does an unreadable metadata file
    kwargs = job_kwargs(config)
    config_dump = config.model_dump(mode="json")
    plans = dispatch.plan_sessions(data_dir, config.dispatch)
    layouts = session_layouts(results_dir, data_dir, plans)
    results, session_results, problems = [], [], []
    with results_lock(ResultsLayout(results_dir)):
        for plan in plans:
            dispatch.write_jobs(layouts[plan.name], data_dir, plan)
            write_processing_json(layouts[plan.name], config_dump)
            problems.extend(plan.problems)
            logger.info("session %s (%s): %d stream(s) to process, %d problem(s), %d not sorted", plan.name,
                        plan.format, len(plan.jobs), len(plan.problems), len(plan.not_sorted))
        if executor != "local":
            submission = submit(layouts, config, profile or ClusterProfile(), results_dir, executor=executor)
            ran = {(job["session"], job["stream"], job["step"]) for job in plan_summary(submission.folder)["jobs"]
                   .values()}
        for plan in plans:
            layout = layouts[plan.name]
            if executor == "local":
                streams = []
                for job in plan.jobs:
                    streams.append(run_stream(plan.name, job["stream"], layout, config, kwargs))
                    write_processing_json(layout, config_dump)
                session_results.extend(run_session_steps(plan.name, layout, config, kwargs, streams))
            else:
                streams = [_from_records(plan.name, job["stream"], layout, config, ran) for job in plan.jobs]
                session_results.extend(_from_records(plan.name, row.stream, layout, config, ran)
                                       for row in session_step_status(plan.name, layout, config))
            results.extend(streams)
            _finish_session(layout, config_dump, metadata)
    return RunSummary(results_dir=results_dir, streams=results, problems=problems, session_steps=session_results,
                      session_dirs={name: layout.root for name, layout in layouts.items()})


def _from_records(session: str, stream: str, layout: ResultsLayout, config: PipelineConfig,
                  ran: set[tuple[str, str, str]]) -> StreamResult:
    """A stream's (or group's) result after a cluster submission, read from its step records."""
    steps = session_step_status(session, layout, config) if stream not in layout.streams() else None
    row = next(r for r in steps if r.stream == stream) if steps else stream_status(session, stream, layout, config)
    state = {"done": STATUS_OK, "skipped": STATUS_SKIPPED}.get(row.state, STATUS_FAILED)
    result = StreamResult(session=session, stream=stream, status=state, reason=row.reason, log=row.log,
                          num_units=row.num_units, num_units_passing_qc=row.num_units_passing_qc)
    for s in row.steps:
        if s.state in ("done", "skipped", "failed"):
            (result.steps_run if (session, stream, s.step) in ran else result.steps_reused).append(s.step)
    return result
