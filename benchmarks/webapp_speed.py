"""How fast ``spikeline view`` is on a 500-unit stream, measured in a real browser (Debian's chromium).

Builds a synthetic results tree (no sorter: SpikeInterface's ground-truth generator, a SortingAnalyzer with the
extensions the pipeline computes, a curated sorting with metrics and ``default_qc``), serves it with
``spikeline view`` in a subprocess, and times with Playwright:

* unit table interactive: navigation to the stream view until the table is rendered (first load of the stream
  by the server, then again in a fresh page once the server has it cached), and one re-sort by a metric;
* unit view render: hash navigation to a unit until its view is in the DOM; first visit, revisit in a fresh
  page (server cache warm, browser cache empty), revisit in the same page.

Usage::

    python benchmarks/webapp_speed.py [--workdir DIR] [--num-units 500] [--output webapp_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

STREAM = "block0_imec0.ap_recording1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def build_results(root: Path, num_units: int, num_channels: int, duration_s: float, seed: int) -> Path:
    """A one-session results tree with ``num_units`` units, readable by ``spikeline view``."""
    import numpy as np
    import spikeinterface as si

    from spikeline.layout import ResultsLayout
    from spikeline.provenance import atomic_write_json
    from spikeline.steps.curate import qc_flags

    layout = ResultsLayout(root)
    if (layout.step_output("curate", STREAM) / "spikes.npy").exists():
        return root
    recording, sorting = si.generate_ground_truth_recording(
        durations=[duration_s], num_channels=num_channels, num_units=num_units, seed=seed,
        generate_probe_kwargs={"num_columns": 2, "xpitch": 32, "ypitch": 20, "contact_shapes": "square",
                               "contact_shape_params": {"width": 12}},
        generate_sorting_kwargs={"firing_rates": (2.0, 12.0), "refractory_period_ms": 4.0})
    analyzer = si.create_sorting_analyzer(sorting, recording, format="binary_folder",
                                          folder=layout.step_output("postprocess", STREAM), sparse=True)
    job_kwargs = {"n_jobs": os.cpu_count() or 1, "progress_bar": False}
    analyzer.compute(["random_spikes", "waveforms", "templates", "noise_levels", "spike_amplitudes",
                      "unit_locations", "spike_locations", "correlograms", "template_metrics"], **job_kwargs)
    analyzer.compute("quality_metrics", metric_names=["firing_rate", "presence_ratio", "isi_violation", "snr",
                                                      "amplitude_cutoff", "amplitude_median"], **job_kwargs)
    metrics = analyzer.get_metrics_extension_data()
    thresholds = {"isi_violations_ratio": {"less": 0.5, "greater": None},
                  "presence_ratio": {"less": None, "greater": 0.8},
                  "amplitude_cutoff": {"less": 0.1, "greater": None}}
    passed, reasons = qc_flags(metrics, {k: types.SimpleNamespace(**v) for k, v in thresholds.items()})
    curated = sorting.select_units(list(analyzer.unit_ids))
    curated.set_property("default_qc", np.array(passed, dtype=bool))
    curated.set_property("qc_fail_reasons", np.array(reasons, dtype=str))
    snr = metrics["snr"].to_numpy()
    labels = np.where(snr > 8, "SUA", np.where(snr > 4, "MUA", "noise"))
    curated.set_property("decoder_label", labels)
    for column in metrics.columns:
        curated.set_property(column, metrics[column].to_numpy(dtype=float))
    curated.save(folder=layout.step_output("curate", STREAM), format="numpy_folder")
    atomic_write_json(layout.job_file(STREAM), {"stream": STREAM, "recording": {}})
    counts = {k: int(v) for k, v in zip(*np.unique(labels, return_counts=True))}
    atomic_write_json(layout.processing_json, {
        "config": {"curation": {"default_qc": thresholds}},
        "data_processes": [{"name": "curate", "stream": STREAM, "status": "ok", "duration_s": 0.0,
                            "outputs": {"num_units": num_units, "num_units_passing_qc": int(sum(passed)),
                                        "num_units_per_decoder_label": counts}}]})
    atomic_write_json(layout.dispatch_record, {"streams": [{"stream": STREAM, "num_channels": num_channels,
                                                            "duration_s": duration_s, "probe_part_number": "synthetic"}],
                      "problems": []})
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(results: Path, num_units: int, chromium: str, num_unit_visits: int) -> dict:
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, "-m", "spikeline.cli", "view", str(results), "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/"
    stream_url = base + f"#/stream?session=.&stream={STREAM}"
    out: dict = {}
    try:
        server.stdout.readline()
        server.stdout.readline()  # "open URL": it listens
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(tempfile.mkdtemp(), executable_path=chromium,
                                                           args=CHROMIUM_ARGS, headless=True,
                                                           viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(120_000)

            def table_time() -> float:
                t0 = time.perf_counter()
                page.goto(stream_url)
                page.wait_for_selector("#table-wrap[data-ready]")
                return time.perf_counter() - t0

            out["table_interactive_first_load_s"] = table_time()
            assert page.locator("#unit-table tbody tr").count() == num_units
            warm = []
            for _ in range(3):
                page.goto("about:blank")
                warm.append(table_time())
            out["table_interactive_warm_s"] = statistics.median(warm)
            t0 = time.perf_counter()
            page.locator("#unit-table th[data-col='snr']").click()
            page.wait_for_selector("#unit-table th[data-col='snr']:has-text('▲')")
            out["table_resort_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            page.fill("#filter", "snr > 5 and default_qc == true")
            page.wait_for_function("document.getElementById('count').textContent.indexOf(' of ') > 0 && "
                                   f"!document.getElementById('count').textContent.startsWith('{num_units} of')")
            out["table_filter_s"] = time.perf_counter() - t0

            ids = page.evaluate("fetch('/api/stream?session=.&stream=" + STREAM + "').then(r => r.json())"
                                ".then(d => d.unit_ids)")
            chosen = ids[:: max(1, len(ids) // num_unit_visits)][:num_unit_visits]

            def unit_times() -> list[float]:
                times = []
                for unit in chosen:
                    t0 = time.perf_counter()
                    page.evaluate(f"location.hash = '#/units?session=.&stream={STREAM}&ids={unit}'")
                    page.wait_for_selector(f"#unit-view[data-ready='{unit}']")
                    times.append(time.perf_counter() - t0)
                return times

            first = unit_times()
            page.goto("about:blank")
            page.goto(stream_url)
            page.wait_for_selector("#table-wrap[data-ready]")
            fresh_page = unit_times()
            same_page = unit_times()
            for name, times in [("unit_view_first_visit", first), ("unit_view_fresh_page_server_warm", fresh_page),
                                ("unit_view_revisit_same_page", same_page)]:
                out[f"{name}_median_s"] = statistics.median(times)
                out[f"{name}_max_s"] = max(times)
            out["num_unit_visits"] = len(chosen)
            context.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "spikeline_webapp_bench")
    parser.add_argument("--num-units", type=int, default=500)
    parser.add_argument("--num-channels", type=int, default=128)
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--num-unit-visits", type=int, default=20)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--output", type=Path, default=Path("webapp_speed.json"))
    args = parser.parse_args()

    results = args.workdir / f"results_{args.num_units}u_{args.num_channels}ch"
    t0 = time.perf_counter()
    build_results(results, args.num_units, args.num_channels, args.duration_s, seed=0)
    build_s = time.perf_counter() - t0
    numbers = measure(results, args.num_units, args.chromium, args.num_unit_visits)
    record = {"num_units": args.num_units, "num_channels": args.num_channels, "duration_s": args.duration_s,
              "build_s": round(build_s, 1), "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                                                        "processor": platform.processor()},
              "timings_s": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in numbers.items()}}
    print(f"{'measure':<45} {'seconds':>9}")
    for key, value in record["timings_s"].items():
        print(f"{key:<45} {value:>9}")
    args.output.write_text(json.dumps(record, indent=2))
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
