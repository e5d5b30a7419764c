"""The step contract and the one function that runs any step with resume, atomic outputs and provenance.

A step is a module-level :class:`Step`: a name, the upstream steps it reads, a function that returns its
resolved parameters from the configuration, and a ``run(ctx, inputs, output)`` function that writes into
``output`` (a temporary folder beside the final one) and returns a small dict of facts for its record.

:func:`execute_step` decides whether the step must run (its record is missing, failed, or was made with other
parameters or other inputs), runs it with a log file, moves the finished folder into place, and writes the
record last. A stream can be skipped on purpose by raising :class:`StreamSkipped`.

A session-level step (``scope="group"``, e.g. NWB) runs the same way for a *group* of streams (``ctx.stream`` is
then the group's name and ``ctx.members`` its streams); its inputs are each member's upstream outputs, labelled
``"<step>/<stream>"``.
"""

from __future__ import annotations

import faulthandler
import logging
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from ..config import PipelineConfig
from ..diskspace import (STEP_MIN_BYTES, DiskFull, analyzer_bytes, check_free_space, expected_step_bytes, free_bytes,
                         human_bytes, is_disk_full, mount_point)
from ..errors import StepFailed
from ..layout import ResultsLayout, temporary_sibling
from ..provenance import (
    DONE_STATUSES,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_RUNNING,
    STATUS_SKIPPED,
    atomic_write_json,
    command_line,
    file_sha256,
    machine_info,
    now_iso,
    package_versions,
    peak_rss_gib,
    read_json,
    remove_path,
    replace_dir,
    stable_hash,
)

logger = logging.getLogger("spikeline")

JOB_INPUT = "job"


class StreamSkipped(Exception):
    """Raised by a step to skip the rest of the pipeline for a stream, with a reason that is recorded.

    Parameters
    ----------
    reason : str
        Why, in one sentence; shown to the user and kept in the step record.
    outputs : dict | None
        Facts the step established before deciding (recorded like a finished step's outputs).
    """

    def __init__(self, reason: str, outputs: dict[str, Any] | None = None):
        super().__init__(reason)
        self.outputs = outputs or {}


@dataclass
class StepContext:
    """What a step needs besides its inputs.

    Attributes
    ----------
    stream : str
        The stream name.
    layout : ResultsLayout
        The results folder.
    config : PipelineConfig
        The validated configuration.
    job_kwargs : dict
        SpikeInterface job kwargs (``n_jobs``, ``chunk_duration``, ``progress_bar``).
    members : tuple of str
        For a group-level step only: the streams of the group (``stream`` is then the group's name).
    """

    stream: str
    layout: ResultsLayout
    config: PipelineConfig
    job_kwargs: dict[str, Any] = field(default_factory=dict)
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One pipeline step.

    Attributes
    ----------
    name : str
        Step name (``preprocess``, ``sort`` ...); its output folder comes from :mod:`spikeline.layout`.
    inputs : tuple of str
        ``"job"`` and/or names of upstream steps whose outputs this step reads.
    params : callable
        ``params(config) -> dict``: the resolved parameters that define the step's result.
    run : callable
        ``run(ctx, inputs, output) -> dict``: does the work, writing into ``output``.
    extra_packages : tuple of str
        Packages whose versions are recorded besides the base ones.
    enabled : callable
        ``enabled(config) -> bool``: whether the pipeline runs this (optional) step; always by default.
    scope : {"stream", "group"}
        ``"stream"``: once per stream. ``"group"``: once per group of streams (session-level steps).
    """

    name: str
    inputs: tuple[str, ...]
    params: Callable[[PipelineConfig], dict[str, Any]]
    run: Callable[[StepContext, dict[str, Path], Path], dict[str, Any]]
    extra_packages: tuple[str, ...] = ()
    enabled: Callable[[PipelineConfig], bool] = lambda config: True
    scope: Literal["stream", "group"] = "stream"


def _input_refs(step: Step, ctx: StepContext) -> dict[str, tuple[str, str]]:
    """Label of each input -> (upstream step or ``"job"``, stream). Group steps read every member's inputs."""
    if step.scope == "stream":
        return {name: (name, ctx.stream) for name in step.inputs}
    return {f"{name}/{member}": (name, member) for member in ctx.members for name in step.inputs}


def _output_path(step: Step, ctx: StepContext) -> Path:
    if step.scope == "stream":
        return ctx.layout.step_output(step.name, ctx.stream)
    return ctx.layout.session_step_output(step.name, ctx.stream)


def _input_paths(step: Step, ctx: StepContext) -> dict[str, Path]:
    return {
        label: ctx.layout.job_file(stream) if name == JOB_INPUT else ctx.layout.step_output(name, stream)
        for label, (name, stream) in _input_refs(step, ctx).items()
    }


def _input_keys(step: Step, ctx: StepContext, paths: dict[str, Path]) -> dict[str, str]:
    """Identity of each input: the job file's hash, or the upstream step's key (which must be done)."""
    keys = {}
    for label, (name, stream) in _input_refs(step, ctx).items():
        path = paths[label]
        if name == JOB_INPUT:
            keys[label] = file_sha256(path)
            continue
        upstream = read_json(ctx.layout.step_record(name, stream))
        if upstream is None or upstream.get("status") != STATUS_OK or not path.exists():
            raise RuntimeError(f"input step '{name}' has not completed for stream '{stream}'")
        keys[label] = upstream["key"]
    return keys


def expected_bytes(step: Step, ctx: StepContext) -> int:
    """What ``step`` is expected to write for ``ctx``'s stream (or group): from the streams' sizes, and for the
    analyzer from the number of spikes the sort step found (its waveforms are written through memory maps, where a
    full disk kills the process with SIGBUS instead of raising an error, so this estimate matters most)."""
    streams = ctx.members if step.scope == "group" else (ctx.stream,)
    nwb = ctx.config.export.nwb
    estimate = expected_step_bytes(step.name, [ctx.layout.job_file(s) for s in streams],
                                   write_raw=nwb.write_raw, write_lfp=nwb.write_lfp)
    if step.name != "postprocess":
        return estimate
    sort = read_json(ctx.layout.step_record("sort", ctx.stream)) or {}
    job = read_json(ctx.layout.job_file(ctx.stream)) or {}
    extensions = ctx.config.postprocessing.extensions
    try:
        waveforms = extensions.get("waveforms")
        return max(estimate, analyzer_bytes(
            int(sort["outputs"]["num_spikes"]), int(sort["outputs"]["num_units"]),
            int(extensions.get("random_spikes", {}).get("max_spikes_per_unit", 500)),
            float(waveforms.get("ms_before", 1.0)) + float(waveforms.get("ms_after", 2.0)) if waveforms is not None
            else 0.0, float(job["sampling_frequency_hz"]), int(job["num_channels"])))
    except (KeyError, TypeError, ValueError):
        return estimate


def _previous_run_died(step: Step, ctx: StepContext, previous: dict | None, log_path: Path) -> None:
    """Say so when the last attempt of this step never finished (its record still says ``running``).

    The results lock guarantees no other run is writing, so that attempt was killed, or crashed in a way Python
    cannot catch: a bus error when a memory-mapped file could not grow on a full disk is the usual one (its
    traceback is at the end of the step's log: faulthandler writes it there).
    """
    if previous is None or previous.get("status") != STATUS_RUNNING:
        return
    try:
        tail = log_path.read_text(errors="replace")[-20000:]
    except OSError:
        tail = ""
    output = _output_path(step, ctx)
    free = human_bytes(free_bytes(output.parent))
    where = f"the results disk ({mount_point(output.parent)}) has {free} free now"
    if "Bus error" in tail:
        logger.warning("[%s] %s: the previous attempt (started %s) crashed with a bus error: a memory-mapped file "
                       "could not grow, which means the disk filled up; %s. Running it again.", ctx.stream,
                       step.name, previous.get("start_date_time"), where)
    else:
        logger.warning("[%s] %s: the previous attempt (started %s) never finished: it was killed or crashed "
                       "(a full disk can end a process with a bus error); %s. Running it again.", ctx.stream,
                       step.name, previous.get("start_date_time"), where)


def _write_failed_record(record_path: Path, record: dict[str, Any]) -> None:
    """Write a failure record; on a full disk that may fail too, and the ``running`` record (never trusted)
    stays."""
    try:
        atomic_write_json(record_path, record)
    except OSError:
        logger.error("could not write the failure record %s (disk full?)", record_path)


def is_current(record: dict | None, key: str, output: Path) -> bool:
    """True when a record says the step is done with this very key (and its output is there if it made one)."""
    if record is None or record.get("status") not in DONE_STATUSES or record.get("key") != key:
        return False
    return record["status"] == STATUS_SKIPPED or output.exists()


def _identity(step: Step, ctx: StepContext) -> tuple[dict[str, Any], dict[str, Path], dict[str, str], str]:
    """Parameters, input paths, input keys and the resulting key of a step (inputs must be done)."""
    params = step.params(ctx.config)
    paths = _input_paths(step, ctx)
    input_keys = _input_keys(step, ctx, paths)
    return params, paths, input_keys, stable_hash({"step": step.name, "params": params, "inputs": input_keys})


def step_state(step: Step, ctx: StepContext) -> str | None:
    """The status of a step's current record (``ok`` or ``skipped``), or ``None`` when it must (re)run.

    Parameters
    ----------
    step : Step
        The step.
    ctx : StepContext
        Stream, results folder and configuration.

    Returns
    -------
    str | None
        ``"ok"`` or ``"skipped"`` when :func:`execute_step` would reuse the record as it is; ``None`` when it would
        run the step (no record, a failed or interrupted one, other parameters, other inputs, or an upstream step
        not done).
    """
    try:
        key = _identity(step, ctx)[3]
    except (RuntimeError, FileNotFoundError):
        return None
    record = read_json(ctx.layout.step_record(step.name, ctx.stream))
    return record["status"] if is_current(record, key, _output_path(step, ctx)) else None


#: Loggers kept at WARNING while a step logs everything else at DEBUG: numba's compiler wrote 8 MB of DEBUG
#: records into one postprocess log of a 10 s recording (and spent time making them).
QUIET_LOGGERS = ("numba",)


class _StepLog:
    """Route log records (ours, SpikeInterface's, the sorter's, and warnings) to the step's log file."""

    def __init__(self, path: Path):
        self.path = path
        self.handler: logging.Handler | None = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(self.path, mode="w")
        self.handler.setLevel(logging.DEBUG)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(self.handler)
        self.root_level = root.level
        root.setLevel(logging.DEBUG)  # the file gets everything; console handlers keep their own levels
        self.quiet_levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
        for name, level in self.quiet_levels.items():
            if level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        # a crash Python cannot catch (a bus error on a full disk, a segfault) leaves its traceback in this log
        self.faulthandler_was_enabled = faulthandler.is_enabled()
        faulthandler.enable(file=self.handler.stream, all_threads=True)
        # warnings raised during the step are logged (to this file) instead of printed; restored on exit
        self.was_capturing = getattr(logging, "_warnings_showwarning", None) is not None
        logging.captureWarnings(True)
        return self

    def __exit__(self, *exc):
        if not self.was_capturing:
            logging.captureWarnings(False)
        faulthandler.disable()
        if self.faulthandler_was_enabled:
            faulthandler.enable(all_threads=True)
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.root_level)
        for name, level in self.quiet_levels.items():
            logging.getLogger(name).setLevel(level)
        self.handler.close()
        return False


def execute_step(step: Step, ctx: StepContext) -> dict[str, Any]:
    """Run one step for one stream unless an identical run already completed.

    Parameters
    ----------
    step : Step
        The step to run.
    ctx : StepContext
        Stream, results folder, configuration and job kwargs.

    Returns
    -------
    dict
        The step record, with ``"reused": True`` when nothing was recomputed.

    Raises
    ------
    StepFailed
        When the step raised; its record (status ``failed``, error and traceback) and log are on disk, and no
        partial output is left where a rerun would trust it.
    """
    layout = ctx.layout
    output = _output_path(step, ctx)
    record_path = layout.step_record(step.name, ctx.stream)
    log_path = layout.step_log(step.name, ctx.stream)
    params, paths, input_keys, key = _identity(step, ctx)

    previous = read_json(record_path)
    if is_current(previous, key, output):
        logger.info("[%s] %s: up to date (%s), reusing", ctx.stream, step.name, previous["status"])
        return {**previous, "reused": True}
    remove_path(temporary_sibling(output))  # what a dead attempt left: never trusted, and it holds disk space
    _previous_run_died(step, ctx, previous, log_path)

    record: dict[str, Any] = {
        "name": step.name,
        "stream": ctx.stream,
        **({"streams": list(ctx.members)} if step.scope == "group" else {}),
        "key": key,
        "status": STATUS_RUNNING,
        "parameters": params,
        "inputs": {name: {"path": str(paths[name]), "key": input_keys[name]} for name in paths},
        "output_location": str(output),
        "log": str(log_path),
        "versions": package_versions(step.extra_packages),
        "machine": machine_info(),
        "command": command_line(),
        "start_date_time": now_iso(),
    }
    tmp = temporary_sibling(output)
    needed_bytes = expected_bytes(step, ctx)
    free_at_start_bytes = free_bytes(output.parent)
    try:
        check_free_space(output.parent, needed_bytes)  # before any work: refuse what cannot fit
        # Invalidate first: from here until the final record is written, nothing downstream trusts this step.
        atomic_write_json(record_path, record)
        remove_path(tmp)
        tmp.parent.mkdir(parents=True, exist_ok=True)
    except (DiskFull, OSError) as exc:
        if not is_disk_full(exc):
            raise
        full = exc if isinstance(exc, DiskFull) else DiskFull(output, free_bytes(output.parent), needed_bytes, False)
        remove_path(tmp)
        record.update(status=STATUS_FAILED, end_date_time=now_iso(), duration_s=0.0, error=str(full),
                      needed_bytes=needed_bytes, free_bytes=full.free_bytes)
        _write_failed_record(record_path, record)
        logger.error("[%s] %s: %s", ctx.stream, step.name, full)
        raise StepFailed(step.name, ctx.stream, str(full), log_path) from exc
    logger.info("[%s] %s: running", ctx.stream, step.name)
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        with _StepLog(log_path):
            logger.debug("step %s, stream %s, key %s, parameters %s", step.name, ctx.stream, key, params)
            outputs = step.run(ctx, paths, tmp) or {}
        status, reason = STATUS_OK, None
    except StreamSkipped as exc:
        outputs, status, reason = exc.outputs, STATUS_SKIPPED, str(exc)
    except BaseException as exc:  # KeyboardInterrupt included: the record must say what happened
        remove_path(tmp)  # first: on a full disk, this frees the space the records and the log need
        reason = short_reason(exc)
        if is_disk_full(exc):
            needed_bytes = max(needed_bytes, free_at_start_bytes + STEP_MIN_BYTES)
            reason = str(DiskFull(output, free_bytes(output.parent), needed_bytes, during_step=True))
            record.update(needed_bytes=needed_bytes, free_bytes=free_bytes(output.parent))
        record.update(
            status=STATUS_FAILED,
            end_date_time=now_iso(),
            duration_s=round(time.perf_counter() - t0, 3),
            error=reason if is_disk_full(exc) else f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
        _write_failed_record(record_path, record)
        try:
            with open(log_path, "a") as f:
                f.write(record["traceback"])
        except OSError:
            pass
        if not isinstance(exc, Exception):
            raise
        raise StepFailed(step.name, ctx.stream, reason, log_path) from exc

    if status == STATUS_OK:
        if not tmp.exists():
            raise StepFailed(step.name, ctx.stream, "step finished without writing its output", log_path)
        replace_dir(tmp, output)
    else:
        remove_path(tmp)
        remove_path(output)
        logger.warning("[%s] %s: stream skipped: %s", ctx.stream, step.name, reason)
    record.update(
        status=status,
        reason=reason,
        outputs=outputs,
        end_date_time=now_iso(),
        duration_s=round(time.perf_counter() - t0, 3),
        cpu_time_s=round(time.process_time() - cpu0, 3),
        peak_rss_gib=peak_rss_gib(),
    )
    try:
        atomic_write_json(record_path, record)
    except OSError as exc:  # the output is in place but its record says "running": a rerun redoes the step
        if not is_disk_full(exc):
            raise
        needed_bytes = max(needed_bytes, free_at_start_bytes + STEP_MIN_BYTES)
        raise StepFailed(step.name, ctx.stream, str(DiskFull(output, free_bytes(output.parent), needed_bytes,
                                                             during_step=True)), log_path) from exc
    logger.info("[%s] %s: %s in %.1f s", ctx.stream, step.name, status, record["duration_s"])
    return record


_ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception): ")


def short_reason(exc: BaseException) -> str:
    """One line for summaries: the innermost ``XxxError: message`` line of a (possibly multi-line) error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    text = errors[-1] if errors else (lines[0] if lines else "")
    text = text if _ERROR_LINE.match(text) else f"{type(exc).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."


def default_progress_bar() -> bool:
    """Progress bars only when a person watches a terminal."""
    return sys.stderr.isatty()
