"""Run the pipeline's steps as SLURM jobs through Snakemake: one job per step per stream.

The driver (``spikeline run --executor slurm``) does what a local run does before any step (validate, dispatch,
write one job file per stream), then:

1. decides, with the very resume rules of a local run (:func:`spikeline.steps.base.step_state`), which steps of
   which streams must run;
2. writes them as a Snakemake job graph (``plan.json``, read by the packaged ``Snakefile``) into a new
   submission folder under ``RESULTS_DIR/cluster/``, each job being ``spikeline step STEP STREAM ...``;
3. runs Snakemake with the SLURM executor plugin until every job ended (``--keep-going``: a failed stream never
   stops the others; a job killed by its time or memory limit is retried with larger limits);
4. records, for every job SLURM killed or never started, a ``failed`` step record with the reason and the log, so
   that ``spikeline status`` shows it and the next submission runs it again.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import PipelineConfig
from ..errors import SpikelineError
from ..layout import ResultsLayout, cluster_dir, export_group
from ..provenance import STATUS_FAILED, STATUS_RUNNING, STATUS_SKIPPED, atomic_write_json, now_iso, read_json
from ..steps import SESSION_STEPS, STEPS, StepContext, step_by_name
from ..steps.base import Step, step_state
from .profile import ClusterProfile, job_resources, probe_hours, uses_gpu

logger = logging.getLogger("spikeline")

SNAKEFILE = Path(__file__).with_name("Snakefile")


@dataclass
class Submission:
    """One submission: its folder and what it asked SLURM to do."""

    folder: Path
    num_jobs: int
    returncode: int


def _job_size(layout: ResultsLayout, stream: str) -> float:
    job = read_json(layout.job_file(stream)) or {}
    return probe_hours(float(job.get("duration_s") or 0.0), int(job.get("num_channels") or 0))


def step_command(python: str, step: str, stream: str, layout: ResultsLayout, config_file: Path, cpus: int) -> str:
    """The shell command of one job: ``spikeline step`` with the submission's resolved configuration."""
    return shlex.join([python, "-m", "spikeline.cli", "step", step, stream, "--results", str(layout.root),
                       "--config", str(config_file), "--n-jobs", str(cpus)])


def plan_jobs(layouts: dict[str, ResultsLayout], config: PipelineConfig, profile: ClusterProfile,
              config_file: Path, python: str) -> dict[str, dict[str, Any]]:
    """Every job this submission needs, keyed ``<session>/<stream>/<step>``, with its dependencies.

    A step whose record is current (same parameters, same inputs) gets no job, as in a local run; after the first
    step that must run, every later step of the stream must run too. A session-level step (NWB) runs for each
    group of streams when one of its streams runs anything, or when it is not current itself.

    Parameters
    ----------
    layouts : dict
        Session name -> its results layout (job files already written by dispatch).
    config : PipelineConfig
        The validated configuration.
    profile : ClusterProfile
        Where jobs go and what they ask for.
    config_file : Path
        The resolved configuration every job reads.
    python : str
        Interpreter on the compute nodes.

    Returns
    -------
    dict
        Job id -> ``{"session", "stream", "step", "deps", "command", "resources"}``.
    """
    sorter, sorter_params = config.spikesorting.sorter, config.spikesorting.resolved_sorter_params()
    jobs: dict[str, dict[str, Any]] = {}

    def add(session: str, stream: str, step: Step, layout: ResultsLayout, deps: list[str], size: float) -> str:
        job_id = f"{session}/{stream}/{step.name}"
        resources = job_resources(profile, step.name, size, uses_gpu(step.name, sorter, sorter_params))
        jobs[job_id] = {"session": session, "stream": stream, "step": step.name, "deps": deps,
                        "command": step_command(python, step.name, stream, layout, config_file,
                                                resources["cpus_per_task"]),
                        "resources": resources}
        return job_id

    for session, layout in layouts.items():
        groups: dict[str, dict[str, Any]] = {}
        for stream in layout.streams():
            ctx = StepContext(stream=stream, layout=layout, config=config)
            last_job, state = None, "ok"
            for step in (s for s in STEPS if s.enabled(config)):
                if last_job is None:
                    state = step_state(step, ctx)
                    if state == STATUS_SKIPPED:
                        break
                    if state is not None:
                        continue
                last_job = add(session, stream, step, layout, [last_job] if last_job else [],
                               _job_size(layout, stream))
            if state == STATUS_SKIPPED:
                continue
            group = groups.setdefault(export_group(stream), {"members": [], "deps": [], "size": 0.0})
            group["members"].append(stream)
            group["size"] += _job_size(layout, stream)
            if last_job:
                group["deps"].append(last_job)
        for step in (s for s in SESSION_STEPS if s.enabled(config)):
            for name, group in sorted(groups.items()):
                ctx = StepContext(stream=name, layout=layout, config=config, members=tuple(group["members"]))
                if group["deps"] or step_state(step, ctx) is None:
                    add(session, name, step, layout, group["deps"], group["size"])
    return jobs


def rule_resources(jobs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Resources every job of a step shares (partition, account, qos, gres ...), for the Snakefile's rules."""
    shared: dict[str, dict[str, Any]] = {}
    for job in jobs.values():
        shared.setdefault(job["step"], {key: value for key, value in job["resources"].items()
                                        if key not in ("cpus_per_task", "mem_mb", "runtime")})
    return shared


def snakemake_command(folder: Path, profile: ClusterProfile, executor: str = "slurm") -> list[str]:
    """The Snakemake command line of a submission (run from ``folder``)."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(folder),
               "--configfile", str(folder / "plan.json"), "--executor", executor, "--jobs", str(profile.max_jobs),
               "--retries", str(profile.retries), "--keep-going", "--latency-wait", str(profile.latency_wait_s),
               "--printshellcmds"]
    if executor == "slurm":
        command += ["--slurm-status-command", profile.status_command, "--slurm-logdir", str(folder / "slurm_logs"),
                    "--slurm-keep-successful-logs",
                    "--slurm-init-seconds-before-status-checks", str(profile.status_interval_s)]
        if profile.account is None:
            command.append("--slurm-no-account")
    return command


def check_snakemake(executor: str) -> None:
    """Fail before any work when Snakemake, its SLURM plugin or sbatch is missing, saying what to install."""
    try:
        import snakemake  # noqa: F401
        if executor == "slurm":
            import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError as exc:
        raise SpikelineError(
            f"cluster runs need Snakemake 9 and its SLURM executor plugin ({exc.name} is missing). They come with "
            "spikeline: reinstall it in this environment (pip install spikeline)"
        ) from None
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise SpikelineError("sbatch was not found on PATH: run cluster submissions on a SLURM login node (or load "
                             "the cluster's slurm module first).")


def _run_snakemake(command: list[str], log_file: Path) -> int:
    """Run Snakemake, keeping its full output in ``log_file`` and showing its progress lines."""
    shown = re.compile(r"(\d+ of \d+ steps|Submitted job|SLURM|Error in rule|Finished job|Nothing to be done|"
                       r"Exiting because)")
    with open(log_file, "w") as log, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                      text=True, bufsize=1) as process:
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            log.flush()
            if shown.search(line):
                logger.info("snakemake: %s", line.rstrip())
        return process.wait()


def submit(layouts: dict[str, ResultsLayout], config: PipelineConfig, profile: ClusterProfile, results_dir: Path,
           executor: str = "slurm") -> Submission:
    """Submit every step that must run as its own job, wait for all of them, and record what SLURM killed.

    Parameters
    ----------
    layouts : dict
        Session name -> results layout (dispatch done).
    config : PipelineConfig
        The validated configuration.
    profile : ClusterProfile
        Partition, account, GPU and per-step resources.
    results_dir : Path
        The results folder given by the user (the submission folder goes under it).
    executor : str
        Snakemake executor: ``slurm``; ``local`` runs the same job graph on this machine (for checks).

    Returns
    -------
    Submission
    """
    folder = cluster_dir(results_dir) / time.strftime("%Y%m%d-%H%M%S")
    while folder.exists():
        folder = folder.with_name(folder.name + "_1")
    folder.mkdir(parents=True)
    config_file = folder / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    jobs = plan_jobs(layouts, config, profile, config_file, profile.python or sys.executable)
    plan = {"jobs": jobs, "rules": rule_resources(jobs), "retry_factor": profile.retry_factor}
    atomic_write_json(folder / "plan.json", plan)
    (folder / "profile.yaml").write_text(yaml.safe_dump(profile.model_dump(mode="json"), sort_keys=False))
    if not jobs:
        logger.info("every step of every stream is up to date: nothing to submit")
        return Submission(folder=folder, num_jobs=0, returncode=0)
    logger.info("submitting %d job(s) through Snakemake (%s executor); submission folder %s", len(jobs), executor,
                folder)
    returncode = _run_snakemake(snakemake_command(folder, profile, executor), folder / "snakemake.log")
    record_unfinished_jobs(layouts, config, jobs, folder)
    return Submission(folder=folder, num_jobs=len(jobs), returncode=returncode)


def slurm_state(job_id: str | None) -> str | None:
    """The state squeue gives a (recently ended) SLURM job: CANCELLED, TIMEOUT, OUT_OF_MEMORY ... or None."""
    if not job_id or shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-j", str(job_id), "-t", "all", "-o", "%T"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0] if out else None


def _slurm_log(folder: Path, job_id: str | None) -> Path | None:
    if not job_id:
        return None
    return next(iter(sorted((folder / "slurm_logs").rglob(f"{job_id}.log"))), None)


def _scheduler_message(folder: Path) -> str | None:
    text = (folder / "snakemake.log").read_text(errors="replace") if (folder / "snakemake.log").exists() else ""
    match = re.search(r"SLURM sbatch failed\. The error message was '([^']*)'", text)
    return match.group(1).strip() if match else None


def record_unfinished_jobs(layouts: dict[str, ResultsLayout], config: PipelineConfig,
                           jobs: dict[str, dict[str, Any]], folder: Path) -> list[str]:
    """Write a ``failed`` record for the first unfinished job of each stream, saying why it did not finish.

    A job that started and was killed (scancel, time or memory limit, node failure) left a ``running`` record
    with its SLURM job id; a job that never started (sbatch refused it) left none. Jobs after a failed one in the
    same stream never ran because of it and keep no record.

    Parameters
    ----------
    layouts : dict
        Session name -> results layout.
    config : PipelineConfig
        The validated configuration.
    jobs : dict
        The submission's jobs (:func:`plan_jobs`).
    folder : Path
        The submission folder (Snakemake's log and the SLURM logs).

    Returns
    -------
    list of str
        The job ids given a ``failed`` record.
    """
    blocked: set[tuple[str, str]] = set()
    marked = []
    for job_id, job in jobs.items():
        session, stream, name = job["session"], job["stream"], job["step"]
        if (folder / "markers" / f"{job_id}.done").exists() or (session, stream) in blocked:
            continue
        layout = layouts[session]
        ctx = StepContext(stream=stream, layout=layout, config=config)
        step = step_by_name(name)
        if step.scope == "stream" and step_state(step, ctx) is not None:
            continue
        blocked.add((session, stream))
        record_path = layout.step_record(name, stream)
        record = read_json(record_path) or {}
        if record.get("status") == STATUS_FAILED and record.get("end_date_time"):
            continue  # the step itself failed and said why
        if any(not (folder / "markers" / f"{dep}.done").exists() for dep in job["deps"]):
            continue  # an upstream job failed: that one is recorded
        slurm_id = (record.get("machine") or {}).get("slurm_job_id")
        if record.get("status") == STATUS_RUNNING:
            state = slurm_state(slurm_id) or "killed"
            reason = (f"SLURM job {slurm_id} ended {state} before the step finished (killed by scancel, its time "
                      "or memory limit, or a node failure); resubmit to run it again")
            log = _slurm_log(folder, slurm_id) or record.get("log")
        else:
            message = _scheduler_message(folder)
            reason = "its SLURM job never started" + (f": sbatch said '{message}'" if message else "")
            log = folder / "snakemake.log"
        record.update(name=name, stream=stream, status=STATUS_FAILED, error=reason, reason=reason,
                      log=str(log), end_date_time=now_iso(), submission=str(folder))
        atomic_write_json(record_path, record)
        logger.error("[%s] %s: %s", stream, name, reason)
        marked.append(job_id)
    return marked


def plan_summary(folder: Path) -> dict[str, Any]:
    """The plan of a submission folder, for tests and ``spikeline status``."""
    return json.loads((folder / "plan.json").read_text())
