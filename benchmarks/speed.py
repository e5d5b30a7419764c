"""Speed and memory: spikeline's steps against a plain SpikeInterface script, side by side on the same data.

A ground-truth SpikeGLX session (Neuropixels 1.0, 384 channels, 60 s by default) is written once. Both sides run
each step in a fresh Python process (wall time, CPU time of the process and its workers, peak resident memory of
the whole process tree sampled every 0.1 s), alternating spikeline / plain step by step so that both see the same
machine load. spikeline's steps run through :func:`spikeline.steps.execute_step` with the default configuration;
the plain side is ``benchmarks/plain_si.py`` (the AIND defaults, written straightforwardly).

The sorter is left out of the comparison: both sides postprocess the same sorting, the ground-truth spike trains
(the sorter's time is the same whoever calls it). ``--time-sorter NAME`` times one sorter run on the preprocessed
data once, for the per-step table; on a machine with CUDA, Kilosort4 is also timed on the GPU (a GPU column).

Also measured:

* scaling: spikeline's non-sorting steps at several durations and channel counts (time should grow linearly,
  peak memory stay flat);
* full passes over the data: frames read from the raw file and from the preprocessed binary, divided by the
  recording's frames, for both sides (one worker, counted as in ``benchmarks/passes.py``);
* the I/O limit: a plain sequential read of the raw ``.ap.bin``, against the preprocess step.

Usage::

    python benchmarks/speed.py                        # quick: 384 ch x 60 s, and 120 s for the scaling
    python benchmarks/speed.py --duration-s 300 --grid full --time-sorter spykingcircus2
    python benchmarks/speed.py --scaling-only --grid full --output benchmarks/speed_scaling_results.json

Writes JSON (``--output``); ``benchmarks/report.py`` turns it into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

NP1_FULL_UNITS = 100  # ground-truth units on a full 384-channel probe; scaled with the channel count
NON_SORTING_STEPS = ("preprocess", "postprocess", "curate", "nwb")
QUICK_GRID = [(120.0, 384)]  # with the main run: two durations at 384 channels (memory and linearity)
FULL_GRID = [(30.0, 384), (120.0, 384), (300.0, 384), (60.0, 96), (60.0, 192)]
STREAM = "block0_imec0.ap_recording1"


# ---------------------------------------------------------------------------------------------------------------
# child process: one step, measured


class TreeMemorySampler:
    """Peak memory of this process and all its descendants, summed, sampled in a background thread.

    Two peaks are kept: the resident set (RSS), which also counts the pages of files the processes map (the
    recording's binary is memory-mapped, so every page read stays in RSS until the kernel needs it back, and pages
    shared by the workers are counted once per process), and the anonymous memory (RSS minus its file-backed and
    shared part), the memory the step itself allocates, which is what must fit in the machine.
    """

    def __init__(self, interval_s: float = 0.1):
        import psutil

        self.process = psutil.Process()
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.peak_anon_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        total = anon = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                info = proc.memory_info()
            except psutil.Error:
                continue
            total += info.rss
            anon += info.rss - info.shared
        self.peak_bytes = max(self.peak_bytes, total)
        self.peak_anon_bytes = max(self.peak_anon_bytes, anon)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> "TreeMemorySampler":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _spikeline_step(spec: dict[str, Any], job_kwargs: dict[str, Any]) -> dict[str, Any]:
    import spikeinterface as si

    from spikeline.config import build_config
    from spikeline.layout import ResultsLayout, export_group
    from spikeline.steps import (
        StepContext,
        execute_step,
        nwb,
        postprocess,
        preprocess,
        sort,
    )
    from spikeline.steps.base import Step
    from spikeline.steps.dispatch import plan_sessions, write_jobs

    root = Path(spec["root"])
    config_data: dict[str, Any] = {"job": {"progress_bar": False, "n_jobs": job_kwargs["n_jobs"]}}
    if spec.get("sorter"):
        config_data["spikesorting"] = {"sorter": spec["sorter"],
                                       "sorter_params": {spec["sorter"]: spec.get("sorter_params", {})}}
    config = build_config(config_data)
    layout = ResultsLayout(root / spec.get("results", "spikeline"))
    ctx = StepContext(stream=STREAM, layout=layout, config=config, job_kwargs=job_kwargs)
    step = spec["step"]
    if step == "preprocess":  # dispatch (finding the stream, writing its job) is part of the work
        (plan,) = plan_sessions(Path(spec["data_dir"]), config.dispatch)
        write_jobs(layout, Path(spec["data_dir"]), plan)
        record = execute_step(preprocess.STEP, ctx)
    elif step == "sort_fixed":  # the shared sorting stands in for the sorter's output
        def copy_sorting(ctx, inputs, output):
            si.load(root / "sorting").save(folder=output, format="numpy_folder")
            return {"num_units": int(si.load(root / "sorting").get_num_units())}

        record = execute_step(Step(name="sort", inputs=("preprocess",), params=sort.params, run=copy_sorting), ctx)
    elif step == "sort":
        record = execute_step(sort.STEP, ctx)
    elif step == "postprocess":
        record = execute_step(postprocess.STEP, ctx)
    elif step == "curate":
        from spikeline.steps import curate

        record = execute_step(curate.STEP, ctx)
    elif step == "nwb":
        group_ctx = StepContext(stream=export_group(STREAM), layout=layout, config=config, job_kwargs=job_kwargs,
                                members=(STREAM,))
        record = execute_step(nwb.STEP, group_ctx)
    else:
        raise ValueError(step)
    if record["status"] != "ok":
        raise RuntimeError(f"{step}: {record['status']} {record.get('reason')}")
    return record.get("outputs") or {}


def _plain_step(spec: dict[str, Any], job_kwargs: dict[str, Any]) -> dict[str, Any]:
    import plain_si

    from spikeline.config import build_config

    root = Path(spec["root"])
    work = root / spec.get("results", "plain")
    work.mkdir(parents=True, exist_ok=True)
    step = spec["step"]
    if step == "preprocess":
        plain_si.preprocess(Path(spec["data_dir"]), work, job_kwargs)
    elif step == "postprocess":
        extensions = build_config().postprocessing.extensions
        plain_si.postprocess(root / "sorting", work, job_kwargs, {k: dict(v) for k, v in extensions.items()})
    elif step == "curate":
        plain_si.curate(work, job_kwargs)
    elif step == "nwb":
        plain_si.nwb(work)
    else:
        raise ValueError(step)
    return {}


def child_main(spec: dict[str, Any]) -> None:
    """Run one step as described by ``spec`` and print its measurements as the last line of JSON."""
    from collections import Counter

    counter: Counter = Counter()
    if spec.get("count_passes"):
        from passes import count_reads
        from spikeinterface.core.binaryrecordingextractor import BinaryRecordingSegment
        from spikeinterface.extractors.neoextractors.neobaseextractor import (
            NeoRecordingSegment,
        )

        count_reads(NeoRecordingSegment, counter, "raw")
        count_reads(BinaryRecordingSegment, counter, "preprocessed")
    job_kwargs = {"n_jobs": spec["n_jobs"], "chunk_duration": "1s", "progress_bar": False}
    run = _spikeline_step if spec["side"] == "spikeline" else _plain_step
    t0 = time.perf_counter()
    with TreeMemorySampler() as memory:
        outputs = run(spec, job_kwargs)
    wall_s = time.perf_counter() - t0
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    peak_gib = max(memory.peak_bytes, own.ru_maxrss * 1024) / 2**30
    result = {"wall_s": round(wall_s, 2), "cpu_s": round(cpu_s, 2), "peak_rss_gib": round(peak_gib, 3),
              "peak_anon_gib": round(memory.peak_anon_bytes / 2**30, 3),
              "frames_read": dict(counter), "num_units": outputs.get("num_units")}
    print(json.dumps(result))


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one step in a fresh process; its measurements."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{spec['side']} {spec['step']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------------
# parent: sessions, the side-by-side run, scaling, passes


def num_units_for(num_channels: int) -> int:
    return max(8, round(NP1_FULL_UNITS * num_channels / 384))


def make_session(root: Path, duration_s: float, num_channels: int) -> Path:
    """A ground-truth SpikeGLX session under ``root/data`` and its spikes as ``root/sorting``; the session folder."""
    import spikeinterface as si

    from spikeline.synthetic import make_spikeglx_session

    session = make_spikeglx_session(root / "data", num_channels=num_channels, duration_s=duration_s,
                                    num_units=num_units_for(num_channels))
    spikes = session.ground_truth_sorting(session.streams[0]).to_spike_vector()
    si.NumpySorting.from_samples_and_labels([spikes["sample_index"]], [spikes["unit_index"]], 30000.0).save(
        folder=root / "sorting", overwrite=True)
    return session.data_dir


def sequential_read_s(data_dir: Path, block_bytes: int = 64 * 2**20) -> tuple[float, int]:
    """Seconds to read the raw ``.ap.bin`` once, front to back (the page cache is warm: just written)."""
    (bin_path,) = data_dir.rglob("*.ap.bin")
    buffer = bytearray(block_bytes)
    t0 = time.perf_counter()
    with open(bin_path, "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass
    return time.perf_counter() - t0, bin_path.stat().st_size


def side_by_side(root: Path, data_dir: Path, duration_s: float, n_jobs: int,
                 rows: list[dict[str, Any]], save) -> list[dict[str, Any]]:
    """Each non-sorting step on both sides, alternating; appends to ``rows`` and calls ``save`` after each."""
    base = {"root": str(root), "data_dir": str(data_dir), "n_jobs": n_jobs}
    for step in NON_SORTING_STEPS:
        for side in ("spikeline", "plain"):
            result = measure({**base, "side": side, "step": step})
            rows.append({"side": side, "step": step, **result, "x_realtime": round(duration_s / result["wall_s"], 2)})
            save()
            print(f"  {side:<9} {step:<12} {result['wall_s']:7.1f} s  cpu {result['cpu_s']:7.1f} s  "
                  f"peak {result['peak_rss_gib']:.2f} GiB (anonymous {result['peak_anon_gib']:.2f})", flush=True)
        if step == "preprocess":  # spikeline's sort step, with the shared sorting as its output
            measure({**base, "side": "spikeline", "step": "sort_fixed"})
    return rows


def time_sorters(root: Path, data_dir: Path, duration_s: float, n_jobs: int, sorter: str | None,
                 gpu: bool) -> list[dict[str, Any]]:
    """One sorter run on spikeline's preprocessed data (CPU), and Kilosort4 on the GPU when there is one."""
    runs = []
    if sorter:
        runs.append({"sorter": sorter, "device": "cpu",
                     "sorter_params": {"torch_device": "cpu"} if sorter == "kilosort4" else {}})
    if gpu:
        runs.append({"sorter": "kilosort4", "device": "cuda", "sorter_params": {"torch_device": "cuda"}})
    rows = []
    for run in runs:
        results = f"sort_{run['sorter']}_{run['device']}"
        shutil.copytree(root / "spikeline", root / results, dirs_exist_ok=True)
        spec = {"root": str(root), "data_dir": str(data_dir), "n_jobs": n_jobs, "side": "spikeline", "step": "sort",
                "results": results, "sorter": run["sorter"], "sorter_params": run["sorter_params"]}
        result = measure(spec)
        rows.append({**run, **result, "x_realtime": round(duration_s / result["wall_s"], 3)})
        print(f"  sorter {run['sorter']} ({run['device']}): {result['wall_s']:.1f} s", flush=True)
        shutil.rmtree(root / results, ignore_errors=True)
    return rows


def scaling_row(duration_s: float, num_channels: int, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One row of the scaling table from spikeline's measurements of each non-sorting step."""
    row: dict[str, Any] = {"duration_s": duration_s, "num_channels": num_channels,
                           "num_units": num_units_for(num_channels)}
    for step in NON_SORTING_STEPS:
        for key in ("wall_s", "peak_rss_gib", "peak_anon_gib"):
            row[f"{step}_{key}"] = results[step][key]
    row["total_wall_s"] = round(sum(row[f"{s}_wall_s"] for s in NON_SORTING_STEPS), 1)
    row["max_peak_rss_gib"] = max(row[f"{s}_peak_rss_gib"] for s in NON_SORTING_STEPS)
    row["max_peak_anon_gib"] = max(row[f"{s}_peak_anon_gib"] for s in NON_SORTING_STEPS)
    return row


def scaling_rows(workdir: Path, grid: list[tuple[float, int]], n_jobs: int,
                 rows: list[dict[str, Any]] | None = None, save=None) -> list[dict[str, Any]]:
    """spikeline's non-sorting steps for each (duration, channels) of the grid, appended to ``rows`` (``save()``
    after each, so that an interrupted run keeps what it measured)."""
    rows = [] if rows is None else rows
    for duration_s, num_channels in grid:
        root = workdir / f"scale_{int(duration_s)}s_{num_channels}ch"
        data_dir = make_session(root, duration_s, num_channels)
        base = {"root": str(root), "data_dir": str(data_dir), "n_jobs": n_jobs, "side": "spikeline"}
        results = {step: measure({**base, "step": step})
                   for step in ("preprocess", "sort_fixed", "postprocess", "curate", "nwb")}
        row = scaling_row(duration_s, num_channels, results)
        print(f"  scaling {duration_s:.0f} s x {num_channels} ch: {row['total_wall_s']:.1f} s, "
              f"peak {row['max_peak_rss_gib']:.2f} GiB", flush=True)
        rows.append(row)
        shutil.rmtree(root, ignore_errors=True)
        if save is not None:
            save()
    return rows


def passes_rows(workdir: Path, duration_s: float, num_channels: int) -> list[dict[str, Any]]:
    """Full passes over the raw file and the preprocessed binary per step and side (one worker)."""
    root = workdir / "passes"
    data_dir = make_session(root, duration_s, num_channels)
    num_frames = int(duration_s * 30000)
    base = {"root": str(root), "data_dir": str(data_dir), "n_jobs": 1, "count_passes": True}
    rows = []
    for step in ("preprocess", "postprocess"):
        for side in ("spikeline", "plain"):
            result = measure({**base, "side": side, "step": step})
            rows.append({"side": side, "step": step,
                         **{f"passes_{k}": round(v / num_frames, 2) for k, v in result["frames_read"].items()}})
        if step == "preprocess":
            measure({**base, "side": "spikeline", "step": "sort_fixed"})
    shutil.rmtree(root, ignore_errors=True)
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios spikeline / plain per step and end to end (non-sorting steps)."""
    by = {(r["side"], r["step"]): r for r in rows}
    ratios = {step: round(by["spikeline", step]["wall_s"] / by["plain", step]["wall_s"], 2) for step in
              NON_SORTING_STEPS}
    totals = {side: round(sum(by[side, s]["wall_s"] for s in NON_SORTING_STEPS), 1) for side in ("spikeline", "plain")}
    cpu = {side: round(sum(by[side, s]["cpu_s"] for s in NON_SORTING_STEPS), 1) for side in ("spikeline", "plain")}
    peak = {side: max(by[side, s]["peak_rss_gib"] for s in NON_SORTING_STEPS) for side in ("spikeline", "plain")}
    return {"wall_ratio_per_step": ratios, "total_wall_s": totals, "total_cpu_s": cpu,
            "end_to_end_wall_ratio": round(totals["spikeline"] / totals["plain"], 2), "max_peak_rss_gib": peak}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--num-channels", type=int, default=384)
    parser.add_argument("--grid", choices=("quick", "full", "none"), default="quick",
                        help=f"scaling grid: quick {QUICK_GRID}, full {FULL_GRID} (plus the main run)")
    parser.add_argument("--scaling-only", action="store_true",
                        help="only the scaling grid, the main size included (no side by side, no passes)")
    parser.add_argument("--time-sorter", default=None, help="also time this sorter once on the main recording (CPU)")
    parser.add_argument("--passes-duration-s", type=float, default=5.0)
    parser.add_argument("--passes-num-channels", type=int, default=32)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/speed_results.json"))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return
    import torch

    gpu = torch.cuda.is_available()
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "speed", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
        "machine": {"cpu_cores": os.cpu_count(), "python": platform.python_version(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "gpu": torch.cuda.get_device_name(0) if gpu else None},
        "settings": {"duration_s": args.duration_s, "num_channels": args.num_channels, "n_jobs": args.n_jobs,
                     "num_units": num_units_for(args.num_channels), "grid": args.grid,
                     "scaling_only": args.scaling_only, "time_sorter": args.time_sorter,
                     "sorting": "ground-truth spike trains stand in for the sorter's output on both sides"},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after each phase: partial results survive an interrupted run
        result["wall_s"] = round(time.perf_counter() - t_start, 1)
        args.output.write_text(json.dumps(result, indent=2) + "\n")

    grid = {"quick": QUICK_GRID, "full": FULL_GRID, "none": []}[args.grid]
    if args.scaling_only:
        main_size = (args.duration_s, args.num_channels)
        sizes = sorted({main_size, *grid}, key=lambda size: (size[1], size[0]))
        result["scaling"] = []
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            scaling_rows(Path(tmp), sizes, args.n_jobs, result["scaling"], save)
        _finish(result, save)
        print(f"wrote {args.output} ({result['wall_s']:.0f} s)")
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        root = workdir / "main"
        t0 = time.perf_counter()
        data_dir = make_session(root, args.duration_s, args.num_channels)
        print(f"session written in {time.perf_counter() - t0:.0f} s", flush=True)
        read_s, num_bytes = sequential_read_s(data_dir)
        result["io"] = {"raw_bytes": num_bytes, "sequential_read_s": round(read_s, 2),
                        "read_gib_per_s": round(num_bytes / 2**30 / read_s, 2)}
        rows: list[dict[str, Any]] = []
        result["steps"] = rows
        side_by_side(root, data_dir, args.duration_s, args.n_jobs, rows, save)
        result["summary"] = summarize(rows)
        pre = next(r for r in rows if r["side"] == "spikeline" and r["step"] == "preprocess")
        result["io"]["preprocess_over_read"] = round(pre["wall_s"] / read_s, 1)
        save()
        result["sorters"] = time_sorters(root, data_dir, args.duration_s, args.n_jobs, args.time_sorter, gpu)
        save()
        shutil.rmtree(root, ignore_errors=True)
        main_row = scaling_row(args.duration_s, args.num_channels,
                               {r["step"]: r for r in rows if r["side"] == "spikeline"})
        result["scaling"] = sorted([main_row, *scaling_rows(workdir, grid, args.n_jobs)],
                                   key=lambda r: (r["num_channels"], r["duration_s"]))
        save()
        result["passes"] = {"duration_s": args.passes_duration_s, "num_channels": args.passes_num_channels,
                            "rows": passes_rows(workdir, args.passes_duration_s, args.passes_num_channels)}
    _finish(result, save)
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {args.output} ({result['wall_s']:.0f} s)")


def _finish(result: dict[str, Any], save) -> None:
    result["complete"] = True
    result["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    save()


if __name__ == "__main__":
    main()
