"""Command-line commands for cluster work: ``status``, ``step``, ``slurm-script`` and ``slurm-profile``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ..errors import SpikelineError, StepFailed

HEAD_JOB_TEMPLATE = """#!/bin/bash
# spikeline head job: submit with `sbatch {script_name}`.
# It runs the spikeline driver, which submits one SLURM job per step per stream (GPU only for sorting),
# waits for them and records every failure; it needs little: {cpus} cores, {mem_gb} GB, but a long time limit,
# as long as the whole run. Resubmitting this script runs only what is missing or failed.
#SBATCH --job-name=spikeline-{job_name}
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task={cpus}
#SBATCH --mem={mem_gb}G
#SBATCH --time={time}
#SBATCH --output={log_dir}/spikeline-head-%j.out
{optional}
set -euo pipefail

# The environment spikeline is installed in (venv or conda); the jobs it submits inherit it (sbatch --export=ALL).
{activate}

# Where things are: raw data is only read; results (and the cluster/ folder with every job's log) go to RESULTS.
DATA_DIR={data_dir}
RESULTS={results}

spikeline run "$DATA_DIR" --results "$RESULTS" --executor slurm{profile}{config}{extra}

# Then, from a login node:  spikeline status "$RESULTS"
"""


def _q(text: str | Path) -> str:
    return shlex.quote(str(text))


def render_head_script(data_dir: Path, results: Path, profile_file: Path | None, config_file: Path | None,
                       partition: str | None, account: str | None, time_limit: str, cpus: int, mem_gb: int,
                       activate: str | None, script_name: str, extra_args: str = "") -> str:
    """The text of a commented sbatch script that runs the driver as a job (the spike_sort.slm equivalent).

    Parameters
    ----------
    data_dir, results : Path
        The run's data and results folders.
    profile_file, config_file : Path | None
        Cluster profile and pipeline configuration passed to ``spikeline run``.
    partition, account : str | None
        Partition and account of the head job itself.
    time_limit : str
        SLURM time limit of the head job (``D-HH:MM:SS``): it waits for every job of the run.
    cpus, mem_gb : int
        Cores and memory of the head job.
    activate : str | None
        The shell line that activates the environment (default: this interpreter's venv or conda env).
    script_name : str
        The file name the script is written to (shown in its comments).
    extra_args : str
        More arguments for ``spikeline run`` (e.g. ``--sorter spykingcircus2``).

    Returns
    -------
    str
    """
    optional = "\n".join(line for line in (f"#SBATCH --partition={partition}" if partition else "",
                                           f"#SBATCH --account={account}" if account else "") if line)
    if activate is None:
        prefix = Path(sys.prefix)
        activate = (f"source {_q(prefix / 'bin' / 'activate')}" if (prefix / "bin" / "activate").exists()
                    else f"conda activate {_q(prefix)}")
    return HEAD_JOB_TEMPLATE.format(
        script_name=script_name, job_name=Path(data_dir).name or "run", cpus=cpus, mem_gb=mem_gb, time=time_limit,
        log_dir=_q(Path(results).absolute()), optional=optional, activate=activate,
        data_dir=_q(Path(data_dir).absolute()), results=_q(Path(results).absolute()),
        profile=f" --profile {_q(Path(profile_file).absolute())}" if profile_file else "",
        config=f" --config {_q(Path(config_file).absolute())}" if config_file else "",
        extra=f" {extra_args}" if extra_args else "",
    )


@click.command()
@click.argument("results_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
def status(results_dir: Path) -> None:
    """Show each session, stream and step under RESULTS_DIR: pending, running, done, skipped or failed (with the
    reason and the log to read), then totals. Works during a run, local or on SLURM."""
    from ..status import collect_status, format_status

    click.echo(format_status(collect_status(results_dir)))


@click.command()
@click.argument("step_name", metavar="STEP")
@click.argument("stream")
@click.option("--results", "results", required=True, type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="The session's results folder (dispatch already wrote its jobs/).")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="YAML configuration (cluster jobs get their submission's resolved configuration).")
@click.option("--n-jobs", type=int, default=None, help="Worker processes (cluster jobs: the cores they were given).")
def step(step_name: str, stream: str, results: Path, config_file: Path | None, n_jobs: int | None) -> None:
    """Run one STEP for one STREAM (or a session-level step for one group): what each cluster job runs.

    Exits 0 when the step ended done, skipped or failed with a recorded reason (a rerun would fail the same
    way); exits 1 only when it ran out of memory, so the scheduler retries it with more.
    """
    from ..config import load_config
    from ..layout import ResultsLayout
    from ..pipeline import run_step

    overrides = {"job": {"progress_bar": False, **({"n_jobs": n_jobs} if n_jobs is not None else {})}}
    try:
        record = run_step(ResultsLayout(results), stream, step_name, load_config(config_file, overrides))
    except StepFailed as exc:
        click.echo(f"{step_name} failed for {stream}: {exc.reason} (log: {exc.log_path})", err=True)
        if isinstance(exc.__cause__, MemoryError):
            sys.exit(1)
        return
    except SpikelineError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{step_name} {stream}: {record['status'] if record else 'nothing to do'}")


@click.command("slurm-script")
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option("--results", "results", required=True, type=click.Path(path_type=Path), help="Results folder.")
@click.option("--profile", "profile_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Cluster profile for the jobs the driver submits.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Pipeline configuration (YAML).")
@click.option("--partition", default=None, help="Partition of the head job.")
@click.option("--account", default=None, help="Account of the head job.")
@click.option("--time", "time_limit", default="2-00:00:00", show_default=True,
              help="Time limit of the head job: as long as the whole run.")
@click.option("--cpus", default=2, show_default=True, help="Cores of the head job.")
@click.option("--mem-gb", default=8, show_default=True, help="Memory of the head job, in GB.")
@click.option("--activate", default=None,
              help="Shell line that activates spikeline's environment (default: this venv or conda env).")
@click.option("--run-args", "extra_args", default="", help="More arguments for `spikeline run`, quoted as one.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=Path("spikeline_head.slurm"),
              show_default=True, help="Where to write the script.")
def slurm_script(data_dir: Path, results: Path, profile_file: Path | None, config_file: Path | None,
                 partition: str | None, account: str | None, time_limit: str, cpus: int, mem_gb: int,
                 activate: str | None, extra_args: str, output: Path) -> None:
    """Write a commented sbatch script that runs `spikeline run --executor slurm` as a job (a head job)."""
    output.write_text(render_head_script(data_dir, results, profile_file, config_file, partition, account,
                                         time_limit, cpus, mem_gb, activate, output.name, extra_args))
    click.echo(f"wrote {output}; submit it with:  sbatch {output}")


@click.command("slurm-profile")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the profile to this file instead of printing it.")
def slurm_profile(output: Path | None) -> None:
    """Print the default cluster profile as commented YAML (copy it, edit partition, account, GPU, resources)."""
    from .profile import default_profile_yaml

    text = default_profile_yaml()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}")


COMMANDS = (status, step, slurm_script, slurm_profile)
