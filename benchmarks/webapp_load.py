"""``spikeline view`` under load: 50 concurrent clients reading unit views for 60 s on loopback.

Builds (or reuses) the synthetic results tree of ``webapp_speed.py`` (no sorter), serves it with ``spikeline view``
in its own process, and runs :func:`spikeline.web.load.run_load` against it: each client is a thread with its own
keep-alive connection, requesting unit views of random units (85 %), cross-correlograms of two random units (10 %)
and the unit table (5 %). Every answer must be HTTP 200 with JSON; anything else is an error. Two rounds on the
same server: the first starts cold (each unit's first visit loads its waveforms and correlograms), the second finds
the units cached. After the load, the server must still answer.

Usage::

    python benchmarks/webapp_load.py [--num-clients 50] [--duration-s 60] [--num-units 500] [--output webapp_load.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from webapp_speed import STREAM, build_results, free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "spikeline_webapp_bench")
    parser.add_argument("--num-units", type=int, default=500)
    parser.add_argument("--num-channels", type=int, default=128)
    parser.add_argument("--duration-s", type=float, default=60.0, help="Length of the synthetic recording.")
    parser.add_argument("--num-clients", type=int, default=50)
    parser.add_argument("--load-duration-s", type=float, default=60.0, help="How long the clients run.")
    parser.add_argument("--rounds", type=int, choices=(1, 2), default=2,
                        help="1: a fresh server only; 2: then again once every unit is cached (default).")
    parser.add_argument("--output", type=Path, default=Path("webapp_load.json"))
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).parents[1] / "src"))
    from spikeline.web.load import run_load

    results = args.workdir / f"results_{args.num_units}u_{args.num_channels}ch"
    build_results(results, args.num_units, args.num_channels, args.duration_s, seed=0)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, "-m", "spikeline.cli", "view", str(results), "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        server.stdout.readline()
        server.stdout.readline()  # "open URL": it listens
        with urllib.request.urlopen(f"{base}/api/stream?session=.&stream={STREAM}", timeout=300) as response:
            unit_ids = [str(u) for u in json.loads(response.read())["unit_ids"]]
        rounds = {}
        for name in ("cold_server", "warm_server")[:args.rounds]:  # the second round finds every unit cached
            rounds[name] = run_load("127.0.0.1", port, ".", STREAM, unit_ids, num_clients=args.num_clients,
                                    duration_s=args.load_duration_s, seed=len(rounds)).summary()
            rounds[name]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        with urllib.request.urlopen(f"{base}/api/dashboard", timeout=30) as response:
            alive = response.status == 200
        alive = alive and server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)

    record = {"num_units": args.num_units, "num_channels": args.num_channels, "server_alive_after": alive,
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "processor": platform.processor()},
              **rounds}
    for name, summary in rounds.items():
        print(f"{name}: {args.num_clients} clients x {summary['duration_s']} s on {args.num_units} units: "
              f"{summary['num_requests']} requests ({summary['requests_per_s']}/s), {summary['num_errors']} errors; "
              f"load average {summary['load_average_at_end']}")
        print(f"  {'request':<8} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for kind in ("all", "unit", "ccg", "units"):
            row = summary.get(kind) or {}
            if row.get("num_requests"):
                print(f"  {kind:<8} {row['num_requests']:>7} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['max_ms']:>8}")
    print(f"server alive after: {alive}")
    args.output.write_text(json.dumps(record, indent=2))
    print(f"written {args.output}")
    if any(summary["num_errors"] for summary in rounds.values()) or not alive:
        sys.exit(1)


if __name__ == "__main__":
    main()
