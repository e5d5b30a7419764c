"""Command line: ``spikeline run | status | discover | demo | synthesize | evaluate | config | classifier | export |
view | slurm-script | slurm-profile`` (and ``step``, what each cluster job runs)."""

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


def _dispatch_kwargs(input_format=None, split_segments=None, split_groups=None, debug=None, debug_duration_s=None,
                     min_duration_s=None, reset_timestamps=None) -> dict:
    timestamps = None if reset_timestamps is None else ("reset" if reset_timestamps else "fail")
    values = {"input": input_format, "split_segments": split_segments, "split_groups": split_groups,
              "debug": debug, "debug_duration_s": debug_duration_s, "min_duration_s": min_duration_s,
              "timestamps": timestamps}
    return {key: value for key, value in values.items() if value is not None}


def _overrides(sorter: str | None = None, n_jobs: int | None = None, runmode: str | None = None,
               preprocessing_args: str | None = None, spikesort_args: str | None = None,
               job_dispatch_args: str | None = None, nwb_metadata: Path | None = None, **dispatch) -> dict:
    """Configuration overrides from CLI flags: AIND argument strings first, then the plain flags (which win)."""
    from .aind_args import aind_overrides
    from .config import deep_merge

    flags: dict = {}
    if sorter is not None:
        flags["spikesorting"] = {"sorter": sorter}
    if n_jobs is not None:
        flags["job"] = {"n_jobs": n_jobs}
    if runmode is not None:
        flags["runmode"] = runmode
    if nwb_metadata is not None:
        flags["export"] = {"metadata_file": str(Path(nwb_metadata).absolute())}
    dispatch_flags = _dispatch_kwargs(**dispatch)
    if dispatch_flags:
        flags["dispatch"] = dispatch_flags
    return deep_merge(aind_overrides(preprocessing_args, spikesort_args, job_dispatch_args), flags)


def _load(config_file: Path | None, **options):
    from .config import load_config

    return load_config(config_file, _overrides(**options))


def _dispatch_options(command):
    """The dispatch flags (shared by `run`, `discover` and `config show`)."""
    options = [
        click.option("--input", "input_format", default=None,
                     type=click.Choice(["auto", "spikeglx", "openephys", "nwb", "aind", "spikeinterface"]),
                     help="Input format (default: auto, which detects every supported format)."),
        click.option("--split-segments/--no-split-segments", default=None,
                     help="One job per segment (default), or concatenate segments."),
        click.option("--split-groups/--no-split-groups", default=None,
                     help="One job per shank of multi-shank probes (default: off)."),
        click.option("--debug", is_flag=True, default=None, help="Clip every stream to --debug-duration seconds."),
        click.option("--debug-duration", "debug_duration_s", type=float, default=None,
                     help="Seconds kept per stream with --debug (default 30)."),
        click.option("--min-duration", "min_duration_s", type=float, default=None,
                     help="Skip streams shorter than this many seconds (reason recorded)."),
        click.option("--reset-timestamps/--fail-on-bad-timestamps", "reset_timestamps", default=None,
                     help="Irregular timestamps: reset them to a regular clock (default, recorded) or refuse."),
        click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="YAML configuration file."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run_options(command):
    """Flags that shape a run (shared by `run`, `demo` and `config show`)."""
    from .config import SORTERS

    options = [
        click.option("--sorter", type=click.Choice(SORTERS), default=None, help="Spike sorter (default: kilosort4)."),
        click.option("--n-jobs", type=int, default=None, help="Worker processes (-1: all cores)."),
        click.option("--runmode", type=click.Choice(["full", "fast"]), default=None,
                     help="fast: no motion estimation, no PCA-based extensions and metrics."),
        click.option("--preprocessing_args", "preprocessing_args", default=None,
                     help='AIND pipeline preprocessing arguments, e.g. "--denoising destripe --motion apply".'),
        click.option("--spikesort_args", "spikesort_args", default=None,
                     help='AIND pipeline sorter arguments, e.g. "--skip-motion-correction".'),
        click.option("--job_dispatch_args", "job_dispatch_args", default=None,
                     help='AIND pipeline job-dispatch arguments, e.g. "--input spikeglx --debug".'),
        click.option("--nwb-metadata", "nwb_metadata", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                     default=None, help="YAML/JSON subject and session metadata for NWB and data_description.json."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _print_summary(summary, elapsed_s: float) -> None:
    click.echo("")
    click.echo(f"{'session':<24} {'stream':<34} {'status':<8} {'units':>5} {'pass QC':>7}  steps run / reused")
    for s in summary.streams:
        units = "-" if s.num_units is None else s.num_units
        passing = "-" if s.num_units_passing_qc is None else s.num_units_passing_qc
        click.echo(f"{s.session:<24} {s.stream:<34} {s.status:<8} {units:>5} {passing:>7}  "
                   f"{','.join(s.steps_run) or '-'} / {','.join(s.steps_reused) or '-'}")
        if s.reason:
            click.echo(f"    reason: {s.reason}" + (f" (log: {s.log})" if s.log else ""))
    for problem in summary.problems:
        click.echo(f"unusable input: {problem['error']}")
    done = sum(s.status == "ok" for s in summary.streams)
    click.echo(f"\n{done} of {len(summary.streams)} stream(s) processed in {elapsed_s:.1f} s; "
               f"results in {summary.results_dir}")


def _run(data_dir: Path, results: Path, config, executor: str = "local", profile_file: Path | None = None):
    from .cluster import load_profile
    from .pipeline import run_pipeline

    t0 = time.perf_counter()
    profile = load_profile(profile_file) if executor != "local" else None
    summary = run_pipeline(data_dir, results, config, executor=executor, profile=profile)
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
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
              help="local: every step in this process. slurm: one SLURM job per step per stream (Snakemake).")
@click.option("--profile", "profile_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="Cluster profile (YAML): partition, account, GPU, per-step resources.")
@_run_options
@_dispatch_options
def run(data_dir: Path, results: Path, config_file: Path | None, executor: str, profile_file: Path | None,
        **options) -> None:
    """Sort every stream of every session under DATA_DIR into RESULTS (resumes: only what changed is redone).

    DATA_DIR may be one session (results go to RESULTS) or a tree of sessions at any depth (results go to
    RESULTS/<session>). With --executor slurm the same steps run as SLURM jobs and this command waits for them
    (run it on a login node, or as a job itself: see `spikeline slurm-script`).
    """
    try:
        summary = _run(data_dir, results, _load(config_file, **options), executor, profile_file)
    except SpikelineError as exc:
        raise click.ClickException(str(exc)) from None
    if not summary.ok:
        sys.exit(1)


@main.command()
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option("--job_dispatch_args", "job_dispatch_args", default=None,
              help='AIND pipeline job-dispatch arguments, e.g. "--input spikeglx --debug".')
@_dispatch_options
def discover(data_dir: Path, config_file: Path | None, **options) -> None:
    """List the sessions and streams under DATA_DIR, and what will be skipped and why, without running anything."""
    from .steps.dispatch import plan_sessions

    try:
        config = _load(config_file, **options)
        plans = plan_sessions(data_dir, config.dispatch)
    except SpikelineError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'session':<28} {'format':<9} {'stream':<48} {'duration_s':>10} {'channels':>8}  probe")
    for plan in plans:
        for job in plan.jobs:
            click.echo(f"{plan.name:<28} {plan.format:<9} {job['stream']:<48} {job['duration_s']:>10.1f} "
                       f"{job['num_channels']:>8}  {job['probe_part_number'] or '-'}")
        for item in plan.not_sorted:
            click.echo(f"{plan.name:<28} {plan.format:<9} skipped: {item['path']}: {item['reason']}")
        for problem in plan.problems:
            click.echo(f"{plan.name:<28} {plan.format:<9} PROBLEM: {problem['error']}")
    num_jobs = sum(len(p.jobs) for p in plans)
    num_problems = sum(len(p.problems) for p in plans)
    click.echo(f"\n{len(plans)} session(s), {num_jobs} stream(s) to sort, {num_problems} problem(s)")


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
@click.option("--sorter", type=click.Choice(["kilosort4", "spykingcircus2", "tridesclous2", "mountainsort5", "lupin"]),
              default="kilosort4", show_default=True)
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
        summary = _run(session.data_dir, results, _load(None, sorter=sorter, n_jobs=n_jobs))
    except SpikelineError as exc:
        raise click.ClickException(str(exc)) from None
    scores = evaluate_results(results, session.ground_truth_dir)
    click.echo("\naccuracy against ground truth:")
    for stream, s in scores.items():
        click.echo(f"  {stream}: {s['num_well_detected']} of {s['num_gt_units']} ground-truth units well detected "
                   f"(accuracy >= 0.8); {s['num_units']} units found, {s.get('num_units_passing_qc')} pass "
                   f"default_qc, {s['num_false_positive_units']} false positive")
    first = summary.streams[0] if summary.streams else None
    stream = first.stream if first else "<stream>"
    session_dir = summary.session_dirs.get(first.session, results) if first else results
    click.echo(f"""
load the results in Python (from any folder):
    import spikeinterface as si
    recording = si.load("{(session_dir / 'preprocessed' / stream).absolute()}")
    sorting   = si.load("{(session_dir / 'curated' / stream).absolute()}")   # default_qc, qc_fail_reasons, metrics
    analyzer  = si.load("{(session_dir / 'postprocessed' / stream).absolute()}")
    analyzer.get_extension("quality_metrics").get_data()

review and curate the units in your browser:  spikeline view {results.absolute()}
NWB files (validated for DANDI) are in {(session_dir / 'nwb').absolute()}""")
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
        session = layout.root.name
        curated = [StreamResult(session=session, stream=s, status="ok") for s in layout.streams()
                   if (read_json(layout.step_record("curate", s)) or {}).get("status") == "ok"]
        with results_lock(layout):
            done = run_session_steps(session, layout, config, kwargs, curated)
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



@main.group("config")
def config_group() -> None:
    """Show the resolved configuration or write its JSON Schema."""


@config_group.command("show")
@_run_options
@_dispatch_options
def config_show(config_file: Path | None, **options) -> None:
    """Print the fully resolved configuration (defaults, file and flags) as YAML."""
    import yaml

    try:
        config = _load(config_file, **options)
    except SpikelineError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


@config_group.command("schema")
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False), required=False)
def config_schema(output: Path | None) -> None:
    """Write the configuration's JSON Schema to OUTPUT (or print it)."""
    from .config import PipelineConfig

    text = json.dumps(PipelineConfig.model_json_schema(), indent=2)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n")
        click.echo(f"wrote {output}")


@main.group("classifier")
def classifier_group() -> None:
    """Train the noise / MUA / SUA unit classifier from labelled results."""


@classifier_group.command("train")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--output", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Model folder to write; use it as curation.classifier.model_folder.")
@click.option("--labels-from", "label_property", default="decoder_label", show_default=True,
              help="Curated-sorting property with the labels (noise/MUA/SUA, good/MUA/noise or bombcell labels).")
@click.option("--seed", default=0, show_default=True)
def classifier_train(results: tuple[Path, ...], output: Path, label_property: str, seed: int) -> None:
    """Train a classifier on the curated units of RESULTS folders (SpikeInterface model-based curation)."""
    from . import classify

    try:
        analyzers, labels = classify.labelled_analyzers(results, label_property)
        summary = classify.train_unit_classifier(analyzers, labels, output, seed=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"trained on {summary['num_units']} units {summary['labels']}; balanced accuracy on held-out units "
               f"{summary['balanced_accuracy']:.2f}; model in {output}\n"
               f"use it with:  curation: {{classifier: {{model_folder: {output.absolute()}}}}}")


@main.command()
@click.argument("results_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind. Anything but loopback requires the access token printed in the URL.")
@click.option("--port", default=8765, show_default=True, help="TCP port (0: any free port).")
@click.option("--curator", default=None, help="Name recorded with each curation change and apply (default: your "
              "user name).")
def view(results_dir: Path, host: str, port: int, curator: str | None) -> None:
    """Serve a local web app to review, compare and curate the units under RESULTS_DIR (Ctrl-C stops it)."""
    from .web import ViewerServer

    try:
        server = ViewerServer(results_dir, host=host, port=port, curator=curator)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
    click.echo(f"spikeline view: serving {Path(results_dir).resolve()}")
    if server.token:
        click.echo("bound to a non-loopback interface: the URL carries an access token; share it with care.")
    click.echo(f"open {server.url}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.httpd.server_close()


def _add_cluster_commands() -> None:
    from .cluster.commands import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_add_cluster_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
