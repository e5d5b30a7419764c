"""Peak memory and time of the postprocess step as recordings grow (the sorter is left out).

For each duration, a ground-truth recording (SpikeInterface's generator, Neuropixels-like geometry) is saved as a
binary folder, its ground-truth sorting stands in for the sorter's output, and spikeline's postprocess step runs
in a fresh Python process whose peak resident memory is read from ``getrusage``. Memory should stay flat while
time grows linearly: the analyzer is sparse and computed in chunks.

Usage::

    python benchmarks/postprocess_memory.py [--durations 30 60 120] [--num-channels 96] [--output results.json]

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from spikeline.config import build_config
from spikeline.pipeline import job_kwargs
from spikeline.layout import ResultsLayout
from spikeline.steps import StepContext, postprocess
root = Path(sys.argv[1])
config = build_config({"job": {"progress_bar": False, "n_jobs": 2}})
ctx = StepContext(stream="s", layout=ResultsLayout(root), config=config, job_kwargs=job_kwargs(config))
t0 = time.perf_counter()
postprocess.run(ctx, {"preprocess": root / "recording", "sort": root / "sorting"}, root / "postprocessed")
wall_s = time.perf_counter() - t0
peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"wall_s": wall_s, "peak_rss_gib": peak_kib / 2**20}))
"""


def run_one(duration_s: float, num_channels: int, num_units: int, workdir: Path) -> dict:
    import spikeinterface as si

    from spikeline.formats.spikeglx import np1_probe

    recording, sorting = si.generate_ground_truth_recording(
        durations=[duration_s], sampling_frequency=30000.0, num_channels=num_channels, num_units=num_units,
        probe=np1_probe(num_channels), seed=0, generate_sorting_kwargs={"firing_rates": 10.0, "refractory_period_ms": 4.0})
    root = workdir / f"d{int(duration_s)}"
    recording.save(folder=root / "recording", n_jobs=2, progress_bar=False)
    si.NumpySorting.from_sorting(sorting).save(folder=root / "sorting")
    output = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True, check=True)
    result = json.loads(output.stdout.strip().splitlines()[-1])
    return {"duration_s": duration_s, "num_channels": num_channels, "num_units": num_units,
            "wall_s": round(result["wall_s"], 1), "peak_rss_gib": round(result["peak_rss_gib"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--durations", type=float, nargs="+", default=[30.0, 60.0, 120.0])
    parser.add_argument("--num-channels", type=int, default=96)
    parser.add_argument("--num-units", type=int, default=40)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/postprocess_memory_results.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for duration_s in args.durations:
            rows.append(run_one(duration_s, args.num_channels, args.num_units, Path(tmp)))
            print(rows[-1], flush=True)
    print(f"\n{'duration_s':>10} {'channels':>8} {'units':>5} {'wall_s':>7} {'peak_rss_gib':>12}")
    for row in rows:
        print(f"{row['duration_s']:>10.0f} {row['num_channels']:>8} {row['num_units']:>5} {row['wall_s']:>7.1f} "
              f"{row['peak_rss_gib']:>12.2f}")
    args.output.write_text(json.dumps({"machine": {"cpu_cores": __import__("os").cpu_count(),
                                                   "python": platform.python_version()},
                                       "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
