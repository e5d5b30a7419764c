"""The benchmark page is what ``benchmarks/report.py`` makes of the committed results (no benchmark is run here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ("accuracy_results.json", "accuracy_more_sorters_results.json", "ks4_cpu_fast_results.json",
           "speed_results.json", "speed_scaling_results.json", "bench_wall.json")


def test_docs_benchmarks_page_is_regenerated_from_the_committed_results(tmp_path):
    for name in RESULTS:
        if (ROOT / "benchmarks" / name).exists():
            shutil.copy(ROOT / "benchmarks" / name, tmp_path / name)
    accuracy = [str(tmp_path / name) for name in RESULTS[:2]]
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py"), "--accuracy", *accuracy,
                    "--preset-study", str(tmp_path / RESULTS[2]), "--speed", str(tmp_path / RESULTS[3]),
                    "--scaling", str(tmp_path / RESULTS[4]),
                    "--doc", str(tmp_path / "benchmarks.md"), "--image", str(tmp_path / "benchmarks.png")],
                   check=True, capture_output=True, text=True)
    page = (tmp_path / "benchmarks.md").read_text()
    assert page == (ROOT / "docs" / "benchmarks.md").read_text(), (
        "docs/benchmarks.md is out of date: run `python benchmarks/report.py` after changing the results or report.py")
    for heading in ("## Targets", "## Accuracy against ground truth", "## Speed and memory against a plain"):
        assert heading in page
    assert (tmp_path / "benchmarks.png").stat().st_size > 10_000
