"""Accuracy against ground truth: drift scenarios x sorters, through the real pipeline, as for user data.

For each scenario a ground-truth recording is generated with SpikeInterface's drifting generator
(``generate_drifting_recording``: the same units and spike trains, with or without drift) on a Neuropixels 1.0
geometry, written as a SpikeGLX session (``.ap.bin`` + ``.ap.meta``) and run through
:func:`spikeline.pipeline.run_pipeline` with the default configuration, except: NWB export off (it does not change
the units), ``min_drift_channels: 0`` so every sorter uses its own drift correction even on a small probe, and the
sorter (and preset) under test. The curated sorting is scored with :mod:`spikeline.evaluate`.

Scenarios (drift is rigid, along the probe):

* ``none``: no drift;
* ``slow``: one triangular cycle of +-20 um over the recording;
* ``fast``: triangular +-10 um with a period of 5 s;
* ``step``: abrupt jumps of 30 um at random intervals of a quarter to a third of the recording.

Usage::

    python benchmarks/accuracy.py                                   # quick: 32 ch, 60 s, kilosort4
    python benchmarks/accuracy.py --duration-s 600 --num-channels 384 --num-units 100 \\
        --sorters kilosort4 spykingcircus2 tridesclous2 mountainsort5
    python benchmarks/accuracy.py --scenarios none step --sorters kilosort4 kilosort4:cpu_fast \\
        --output benchmarks/ks4_cpu_fast_results.json                # the cpu_fast trade-off

A sorter is named ``sorter`` or ``sorter:preset`` (candidate parameter sets: :data:`CANDIDATE_PRESETS`).
Writes JSON (``--output``); ``benchmarks/report.py`` turns it into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

SCENARIOS = ("none", "slow", "fast", "step")
DEFAULT_SORTERS = ("kilosort4",)
#: Candidate parameter sets, named ``sorter:preset`` on the command line and passed as sorter parameters. One becomes
#: a configuration preset only once this benchmark shows it meets its target (see docs/benchmarks.md).
CANDIDATE_PRESETS = {"kilosort4": {"cpu_fast": {"n_templates": 3, "template_sizes": 2}}}
#: A ground-truth unit counts as *detectable* from this signal-to-noise ratio (SpikeInterface's ``snr`` metric on the
#: highpassed recording without drift); units below it are at the noise floor for any sorter.
DETECTABLE_SNR = 5.0
#: Kilosort4's log lines with a stage time: "<what> in 12.3s; total ..." (kilosort.run_kilosort).
KS4_STAGE = re.compile(r"INFO\s+(?P<what>.+?),? in (?P<seconds>[0-9.]+)s; total")


def displacement_kwargs(scenario: str, duration_s: float) -> dict[str, Any]:
    """``generate_displacement_vector`` arguments of one scenario (``none`` uses the static twin of ``slow``)."""
    motion = {"non_rigid_gradient": None, "t_start_drift": 0.0, "t_end_drift": None}
    if scenario in ("none", "slow"):
        amplitude_um = 20.0
        motion.update(drift_mode="zigzag", period_s=duration_s)
    elif scenario == "fast":
        amplitude_um = 10.0
        motion.update(drift_mode="zigzag", period_s=5.0)
    elif scenario == "step":
        amplitude_um = 15.0
        motion.update(drift_mode="bump", bump_interval_s=(duration_s / 4, duration_s / 3))
    else:
        raise ValueError(f"unknown scenario {scenario!r}; valid: {SCENARIOS}")
    return {"displacement_sampling_frequency": 5.0, "drift_start_um": [0, amplitude_um],
            "drift_stop_um": [0, -amplitude_um], "drift_step_um": 1, "motion_list": [motion]}


def ground_truth_snr(recording, sorting) -> dict[str, float]:
    """Each ground-truth unit's signal-to-noise ratio (SpikeInterface's ``snr``) on the 300 Hz highpassed recording."""
    import spikeinterface as si
    import spikeinterface.preprocessing as spre

    analyzer = si.create_sorting_analyzer(sorting, spre.highpass_filter(recording, freq_min=300.0), sparse=False,
                                          format="memory", return_in_uV=False)
    analyzer.compute(["random_spikes", "templates", "noise_levels"], progress_bar=False)
    snr = analyzer.compute("quality_metrics", metric_names=["snr"], progress_bar=False).get_data()["snr"]
    return {str(unit): round(float(value), 2) for unit, value in snr.items()}


def write_scenario(folder: Path, scenario: str, duration_s: float, num_channels: int, num_units: int,
                   seed: int) -> tuple[Path, Path, dict[str, float]]:
    """Write one scenario as a SpikeGLX session; return (session folder, ground-truth folder, units' SNR).

    The SNR is measured on the recording without drift (the same units, templates and noise).
    """
    from spikeinterface.core import NumpyFolderSorting
    from spikeinterface.generation import generate_drifting_recording

    from spikeline.formats.spikeglx import ap_bin_path, np1_probe, write_ap_stream
    from spikeline.layout import stream_name

    static, drifting, truth = generate_drifting_recording(
        num_units=num_units, duration=duration_s, probe=np1_probe(num_channels), seed=seed,
        generate_displacement_vector_kwargs=displacement_kwargs(scenario, duration_s),
        generate_sorting_kwargs={"firing_rates": (5.0, 12.0), "refractory_period_ms": 4.0})
    recording = static if scenario == "none" else drifting
    run_name = f"gt_{scenario}"
    write_ap_stream(recording, ap_bin_path(folder / "raw", run_name))
    gt_dir = folder / "ground_truth"
    NumpyFolderSorting.write_sorting(truth, gt_dir / stream_name(0, "imec0.ap", 0), overwrite=True)
    return folder / "raw" / f"{run_name}_g0", gt_dir, ground_truth_snr(static, truth)


def sorter_config(spec: str, n_jobs: int, sorter_drift_correction: bool = False) -> dict[str, Any]:
    """Configuration overrides for ``sorter`` or ``sorter:preset`` (and the sorter's drift correction forced on)."""
    sorter, _, preset = spec.partition(":")
    spikesorting: dict[str, Any] = {"sorter": sorter}
    if sorter_drift_correction:
        spikesorting["min_drift_channels"] = 0
    if preset:
        spikesorting["sorter_params"] = {sorter: CANDIDATE_PRESETS[sorter][preset]}
    return {"job": {"progress_bar": False, "n_jobs": n_jobs}, "spikesorting": spikesorting,
            "export": {"nwb": {"enabled": False}}}


def ks4_stage_times(results_dir: Path, stream: str) -> dict[str, float]:
    """Kilosort4's own per-stage times (seconds) from its log, where the run kept one."""
    log = results_dir / "spikesorted" / stream / "sorter" / "sorter_output" / "kilosort4.log"
    if not log.exists():
        return {}
    stages: dict[str, float] = {}
    names = iter(("preprocessing_filters", "drift", "spike_detection_universal", "first_clustering",
                  "spike_detection_learned", "final_clustering", "merging"))
    for match in KS4_STAGE.finditer(log.read_text(errors="replace")):
        stages[next(names, match["what"])] = float(match["seconds"])
    return stages


def run_one(workdir: Path, scenario: str, spec: str, session: tuple[Path, Path, dict[str, float]], n_jobs: int,
            sorter_drift_correction: bool = False) -> dict[str, Any]:
    """Run the pipeline on one scenario with one sorter and score it."""
    from spikeline.config import build_config
    from spikeline.evaluate import WELL_DETECTED_SCORE, evaluate_results
    from spikeline.pipeline import run_pipeline
    from spikeline.provenance import read_json

    data_dir, gt_dir, snr = session
    results = workdir / f"results_{scenario}_{spec.replace(':', '_')}"
    shutil.rmtree(results, ignore_errors=True)
    t0 = time.perf_counter()
    summary = run_pipeline(data_dir, results, build_config(sorter_config(spec, n_jobs, sorter_drift_correction)))
    wall_s = time.perf_counter() - t0
    row: dict[str, Any] = {"scenario": scenario, "sorter": spec, "ok": summary.ok, "pipeline_wall_s": round(wall_s, 1)}
    if not summary.ok:
        row["error"] = "; ".join(str(s.reason) for s in summary.streams if s.reason)
        return row
    (stream, scores), = evaluate_results(results, gt_dir).items()
    sort_record = read_json(results / "provenance" / stream / "sort.json") or {}
    row.update(scores)
    detectable = [u for u, value in snr.items() if value >= DETECTABLE_SNR]
    row["gt_snr"] = snr
    row["num_detectable_gt_units"] = len(detectable)
    row["num_well_detected_detectable"] = sum(scores["accuracy_per_gt_unit"].get(u, 0.0) >= WELL_DETECTED_SCORE
                                              for u in detectable)
    row["sort_wall_s"] = sort_record.get("duration_s")
    row["sort_peak_rss_gib"] = sort_record.get("peak_rss_gib")
    row["sorter_kwargs"] = (sort_record.get("outputs") or {}).get("sorter_kwargs")
    if spec.startswith("kilosort4"):
        row["ks4_stage_s"] = ks4_stage_times(results, stream)
    return row


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=60.0, help="recording length (600 for the full table)")
    parser.add_argument("--num-channels", type=int, default=32, help="NP1.0 channels (bank 0); 384 for a full probe")
    parser.add_argument("--num-units", type=int, default=16)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--sorters", nargs="+", default=list(DEFAULT_SORTERS),
                        help="sorter or sorter:preset, e.g. kilosort4 kilosort4:cpu_fast spykingcircus2")
    parser.add_argument("--sorter-drift-correction", action="store_true",
                        help="turn each sorter's own drift correction on whatever the channel count "
                             "(min_drift_channels: 0)")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/accuracy_results.json"))
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import spikeinterface.sorters as ss

    installed = set(ss.installed_sorters())
    sorters = [s for s in args.sorters if s.partition(":")[0] in installed]
    missing = sorted(set(args.sorters) - set(sorters))
    if missing:
        print(f"not installed here, left out: {missing}")
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    result = {
        "benchmark": "accuracy",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
        "machine": {"cpu_cores": os.cpu_count(), "python": platform.python_version(), "gpu": _gpu_name()},
        "settings": {"duration_s": args.duration_s, "num_channels": args.num_channels, "num_units": args.num_units,
                     "seed": args.seed, "n_jobs": args.n_jobs, "scenarios": args.scenarios, "sorters": sorters,
                     "sorter_drift_correction": args.sorter_drift_correction,
                     "not_installed": missing},
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        for scenario in args.scenarios:
            session = write_scenario(workdir / scenario, scenario, args.duration_s, args.num_channels,
                                     args.num_units, args.seed)
            for spec in sorters:
                row = run_one(workdir, scenario, spec, session, args.n_jobs, args.sorter_drift_correction)
                rows.append(row)
                keys = ("scenario", "sorter", "num_well_detected", "num_gt_units", "num_well_detected_detectable",
                        "num_detectable_gt_units", "num_false_positive_units",
                        "sua_precision", "sort_wall_s")
                print({k: row.get(k) for k in keys}, flush=True)
                result["wall_s"] = round(time.perf_counter() - t_start, 1)
                args.output.write_text(json.dumps(result, indent=2) + "\n")  # partial results survive
            shutil.rmtree(workdir / scenario, ignore_errors=True)
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    result["complete"] = True
    result["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output} ({result['wall_s']:.0f} s)")


def _gpu_name() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


if __name__ == "__main__":
    main()
