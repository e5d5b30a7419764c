"""Command line: ``spikeline run``, ``spikeline demo``, ``spikeline synthesize``, ``spikeline evaluate``."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import click

from .errors import SpikelineError
from .synthetic import DEMO_DURATION_S, DEMO_NUM_CHANNELS, DEMO_NUM_UNITS


class _OurRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith("spikeline")


def _configure_console(verbose: bool) -> None:
    """Console shows spikeline's own messages; library chatter goes to each step's log file only."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.addFilter(_OurRecords())
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    root.addHandler(handler)


def _overrides(sorter: str | None, n_jobs: int | None) -> dict:
    overrides: dict = {}
    if sorter is not None:
        overrides["spikesorting"] = {"sorter": sorter}
    if n_jobs is not None:
        overrides["job"] = {"n_jobs": n_jobs}
    return overrides


def _print_summary(summary, elapsed_s: float) -> None:
    click.echo("")
    click.echo(f"{'stream':<34} {'status':<8} {'units':>5} {'pass QC':>7}  steps run / reused")
    for s in summary.streams:
        units = "-" if s.num_units is None else s.num_units
        passing = "-" if s.num_units_passing_qc is None else s.num_units_passing_qc
        click.echo(f"{s.stream:<34} {s.status:<8} {units:>5} {passing:>7}  "
                   f"{','.join(s.steps_run) or '-'} / {','.join(s.steps_reused) or '-'}")
        if s.reason:
            click.echo(f"    reason: {s.reason}" + (f" (log: {s.log})" if s.log else ""))
    for problem in summary.problems:
        click.echo(f"unusable input: {problem['error']}")
    done = sum(s.status == "ok" for s in summary.streams)
    click.echo(f"\n{done} of {len(summary.streams)} stream(s) processed in {elapsed_s:.1f} s; "
               f"results in {summary.results_dir}")


def _run(data_dir: Path, results: Path, config_file: Path | None, overrides: dict):
    from .config import load_config
    from .pipeline import run_pipeline

    config = load_config(config_file, overrides)
    t0 = time.perf_counter()
    summary = run_pipeline(data_dir, results, config)
    _print_summary(summary, time.perf_counter() - t0)
    return summary


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spikeline")
@click.option("-v", "--verbose", is_flag=True, help="Show debug messages.")
def main(verbose: bool) -> None:
    """spikeline: raw extracellular recordings to curated, quality-controlled single units."""
    _configure_console(verbose)


@main.command()
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option("--results", "results", required=True, type=click.Path(path_type=Path), help="Results folder.")
@click.option("--sorter", type=click.Choice(["kilosort4", "spykingcircus2"]), default=None,
              help="Spike sorter (default: kilosort4).")
@click.option("--n-jobs", type=int, default=None, help="Worker processes (-1: all cores).")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="YAML configuration file.")
def run(data_dir: Path, results: Path, sorter: str | None, n_jobs: int | None, config_file: Path | None) -> None:
    """Sort every stream under DATA_DIR into RESULTS (resumes: only what changed is redone)."""
    try:
        summary = _run(data_dir, results, config_file, _overrides(sorter, n_jobs))
    except SpikelineError as exc:
        raise click.ClickException(str(exc)) from None
    if not summary.ok:
        sys.exit(1)


@main.command()
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--num-probes", default=1, show_default=True)
@click.option("--num-channels", default=32, show_default=True)
@click.option("--duration-s", default=60.0, show_default=True)
@click.option("--num-units", default=16, show_default=True)
@click.option("--seed", default=0, show_default=True)
def synthesize(out_dir: Path, num_probes: int, num_channels: int, duration_s: float, num_units: int, seed: int) -> None:
    """Write a ground-truth SpikeGLX session (NP1.0) under OUT_DIR/raw and its truth under OUT_DIR/ground_truth."""
    from .synthetic import make_spikeglx_session

    session = make_spikeglx_session(out_dir, num_probes=num_probes, num_channels=num_channels,
                                    duration_s=duration_s, num_units=num_units, seed=seed)
    click.echo(f"session: {session.data_dir}\nground truth: {session.ground_truth_dir}")


@main.command()
@click.argument("results", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--ground-truth", "ground_truth", required=True,
              type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Folder with one ground-truth sorting folder per stream name.")
def evaluate(results: Path, ground_truth: Path) -> None:
    """Score curated streams in RESULTS against ground truth (prints JSON)."""
    from .evaluate import evaluate_results

    click.echo(json.dumps(evaluate_results(results, ground_truth), indent=2))


@main.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("demo_output"), show_default=True)
@click.option("--sorter", type=click.Choice(["kilosort4", "spykingcircus2"]), default="kilosort4", show_default=True)
@click.option("--num-channels", default=DEMO_NUM_CHANNELS, show_default=True)
@click.option("--duration-s", default=DEMO_DURATION_S, show_default=True)
@click.option("--num-units", default=DEMO_NUM_UNITS, show_default=True)
@click.option("--n-jobs", type=int, default=None, help="Worker processes (-1: all cores).")
def demo(workdir: Path, sorter: str, num_channels: int, duration_s: float, num_units: int, n_jobs: int | None) -> None:
    """Write a synthetic SpikeGLX session, run the whole pipeline on it, and score it against ground truth."""
    from .evaluate import evaluate_results
    from .synthetic import make_spikeglx_session

    session = make_spikeglx_session(workdir / "data", num_channels=num_channels, duration_s=duration_s,
                                     num_units=num_units)
    click.echo(f"synthetic SpikeGLX session: {session.data_dir} ({num_channels} channels, {duration_s:g} s, "
               f"{num_units} ground-truth units)")
    results = workdir / "results"
    try:
        summary = _run(session.data_dir, results, None, _overrides(sorter, n_jobs))
    except SpikelineError as exc:
        raise click.ClickException(str(exc)) from None
    scores = evaluate_results(results, session.ground_truth_dir)
    click.echo("\naccuracy against ground truth:")
    for stream, s in scores.items():
        click.echo(f"  {stream}: {s['num_well_detected']} of {s['num_gt_units']} ground-truth units well detected "
                   f"(accuracy >= 0.8); {s['num_units']} units found, {s.get('num_units_passing_qc')} pass "
                   f"default_qc, {s['num_false_positive_units']} false positive")
    stream = summary.streams[0].stream if summary.streams else "<stream>"
    click.echo(f"""
load the results in Python (from any folder):
    import spikeinterface as si
    recording = si.load("{(results / 'preprocessed' / stream).absolute()}")
    sorting   = si.load("{(results / 'curated' / stream).absolute()}")   # default_qc, qc_fail_reasons, metrics
    analyzer  = si.load("{(results / 'postprocessed' / stream).absolute()}")
    analyzer.get_extension("quality_metrics").get_data()""")
    if not summary.ok:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
