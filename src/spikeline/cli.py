"""Command line: ``spikeline run``, ``spikeline demo``, ``spikeline synthesize``, ``spikeline evaluate``,
``spikeline export nwb|phy``."""

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
@click.option("--nwb-metadata", "nwb_metadata", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="YAML/JSON subject and session metadata for the NWB file and data_description.json.")
def run(data_dir: Path, results: Path, sorter: str | None, n_jobs: int | None, config_file: Path | None,
        nwb_metadata: Path | None) -> None:
    """Sort every stream under DATA_DIR into RESULTS (resumes: only what changed is redone)."""
    overrides = _overrides(sorter, n_jobs)
    if nwb_metadata is not None:
        overrides["export"] = {"metadata_file": str(nwb_metadata.absolute())}
    try:
        summary = _run(data_dir, results, config_file, overrides)
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


@main.group()
def export() -> None:
    """Write NWB or Phy from an existing RESULTS folder (after `spikeline run`)."""


def _export_context(results: Path, config):
    from .layout import ResultsLayout
    from .pipeline import job_kwargs

    layout = ResultsLayout(results)
    if not layout.jobs_dir.is_dir():
        raise click.ClickException(f"{layout.root} is not a spikeline results folder (no jobs/ in it); "
                                   "run `spikeline run DATA_DIR --results RESULTS` first.")
    return layout, job_kwargs(config)


@export.command("nwb")
@click.argument("results", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--metadata", "metadata_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="YAML/JSON subject and session metadata (subject_id, species, sex, age ...).")
@click.option("--backend", type=click.Choice(["hdf5", "zarr"]), default=None, help="NWB backend (default hdf5).")
@click.option("--write-raw", is_flag=True, default=None, help="Also write the raw traces of each probe.")
@click.option("--write-lfp", is_flag=True, default=None, help="Also write a decimated LFP series per probe.")
@click.option("--lfp-decimation", type=int, default=None, help="Keep one LFP sample in this many (default 12).")
@click.option("--stub", is_flag=True, default=None, help="Write only the first --stub-duration-s of raw/LFP.")
@click.option("--stub-duration-s", type=float, default=None, help="Stub length in seconds (default 10).")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="YAML configuration file (its export section is used).")
def export_nwb(results: Path, metadata_file: Path | None, backend: str | None, write_raw: bool | None,
               write_lfp: bool | None, lfp_decimation: int | None, stub: bool | None, stub_duration_s: float | None,
               config_file: Path | None) -> None:
    """Write one NWB file per block and recording of RESULTS (every probe that finished curation)."""
    from .config import load_config
    from .pipeline import StreamResult, results_lock, run_session_steps
    from .provenance import read_json, write_data_description, write_processing_json
    from .metadata import load_session_metadata
    from .steps import nwb

    flags = {"backend": backend, "write_raw": write_raw, "write_lfp": write_lfp, "lfp_decimation": lfp_decimation,
             "stub": stub, "stub_duration_s": stub_duration_s}
    overrides = {"export": {"nwb": {"enabled": True, **{k: v for k, v in flags.items() if v is not None}}}}
    if metadata_file is not None:
        overrides["export"]["metadata_file"] = str(metadata_file.absolute())
    try:
        config = load_config(config_file, overrides)
        nwb.check_backend(config.export.nwb.backend)
        metadata = load_session_metadata(config.export.metadata_file)
        layout, kwargs = _export_context(results, config)
        curated = [StreamResult(stream=s, status="ok") for s in layout.streams()
                   if (read_json(layout.step_record("curate", s)) or {}).get("status") == "ok"]
        with results_lock(layout):
            done = run_session_steps(layout, config, kwargs, curated)
            write_processing_json(layout, (read_json(layout.processing_json) or {}).get("config"))
            write_data_description(layout, metadata)
    except SpikelineError as exc:
        raise click.ClickException(str(exc)) from None
    for result in done:
        record = read_json(layout.step_record("nwb", result.stream)) or {}
        click.echo(f"{result.stream}: {result.status} {(record.get('outputs') or {}).get('nwb_file', '')}"
                   + (f" ({result.reason})" if result.reason else ""))
    if not done or any(r.status != "ok" for r in done):
        sys.exit(1)


@export.command("phy")
@click.argument("results", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--stream", required=True, help="Stream name, e.g. block0_imec0.ap_recording1.")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Phy folder to write (must not exist); default RESULTS/phy/<stream>, recorded in provenance.")
@click.option("--copy-binary", is_flag=True, help="Copy the preprocessed traces into the Phy folder.")
def export_phy(results: Path, stream: str, output: Path | None, copy_binary: bool) -> None:
    """Write a Phy folder for STREAM of RESULTS (curated units, labels and metrics as cluster columns)."""
    from .config import build_config
    from .pipeline import results_lock
    from .steps import StepContext, execute_step, export_phy as phy_step
    from .steps.export_phy import write_phy_folder

    try:
        config = build_config({"export": {"phy": {"enabled": True, "copy_binary": copy_binary}}})
        layout, kwargs = _export_context(results, config)
        if stream not in layout.streams():
            raise click.ClickException(f"no stream '{stream}' in {layout.root}; streams: {layout.streams()}")
        if output is not None:
            if output.exists():
                raise click.ClickException(f"{output} already exists; choose a new folder.")
            facts = write_phy_folder(layout.step_output("postprocess", stream), layout.step_output("curate", stream),
                                     output, copy_binary=copy_binary, job_kwargs=kwargs)
            folder = output
        else:
            with results_lock(layout):
                ctx = StepContext(stream=stream, layout=layout, config=config, job_kwargs=kwargs)
                facts = execute_step(phy_step.STEP, ctx)["outputs"]
            folder = layout.step_output("export_phy", stream)
    except SpikelineError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{facts['num_units']} units, {facts['num_spikes']} spikes: phy template-gui {folder / 'params.py'}")


if __name__ == "__main__":  # pragma: no cover
    main()
