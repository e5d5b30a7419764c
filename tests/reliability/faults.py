"""Helpers of the fault tests: the reference run (a fixture: import it), run, kill and compare real ``spikeline run``
processes, and a small tmpfs for the full-disk tests.

(Not a ``conftest.py``: a second one would shadow ``tests/conftest.py`` for modules that import from it.)

The reference is a tiny SpikeGLX session (16 channels, 10 s, 4 units) sorted by Kilosort4 on CPU, which is
deterministic here (SpyKING CIRCUS 2 is not); motion is off, and every step the faults aim at is on: Phy export and
NWB included. It runs once per test session; the kill and full-disk tests compare their reruns with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from spikeline.layout import ResultsLayout, export_group
from spikeline.provenance import read_json
from spikeline.synthetic import make_spikeglx_session

CONFIG = ("job: {progress_bar: false, n_jobs: 1}\nspikesorting: {sorter: kilosort4}\npreprocessing: {motion: skip}\n"
          "export: {nwb: {enabled: true}, phy: {enabled: true, compute_pc_features: false}}\n")
#: Metrics that differ between two uninterrupted runs (SpikeInterface 0.105.3 estimates sd_ratio's noise on
#: unseeded random chunks): left out of the comparisons, every other column must be equal.
NONDETERMINISTIC_METRICS = ("sd_ratio",)
#: Steps of the reference run, in order (each one a target of the aimed kills).
STEPS = ("preprocess", "sort", "postprocess", "curate", "visualize", "export_phy", "nwb")


@dataclass(frozen=True)
class Reference:
    """The uninterrupted run every faulty run is compared with."""

    data_dir: Path
    config: Path
    results: Path
    stream: str
    duration_s: float
    step_durations_s: dict[str, float]
    outcome: dict


def start_run(data: Path, results: Path, config: Path) -> subprocess.Popen:
    """Start ``spikeline run`` in its own process group (so a kill reaches every worker it started).

    Its console output goes to a temporary file (a pipe nobody reads could fill up and stall the run);
    :func:`finish` returns it.
    """
    command = [sys.executable, "-m", "spikeline.cli", "run", str(data), "--results", str(results),
               "--config", str(config)]
    console = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(command, stdout=console, stderr=subprocess.STDOUT, start_new_session=True,
                               text=True)
    process.console = console
    return process


def finish(process: subprocess.Popen, timeout_s: float = 900) -> tuple[int, str]:
    """Wait for a run to end: (exit code, console output)."""
    code = process.wait(timeout=timeout_s)
    process.console.seek(0)
    output = process.console.read()
    process.console.close()
    return code, output


def run(data: Path, results: Path, config: Path, timeout_s: float = 900) -> tuple[int, str]:
    """Run ``spikeline run`` to its end: (exit code, console output)."""
    return finish(start_run(data, results, config), timeout_s)


def kill(process: subprocess.Popen) -> str:
    """SIGKILL the run's whole process group, reap it, and return its console output."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return finish(process, timeout_s=60)[1]


def step_record_path(results: Path, step: str, stream: str) -> Path:
    """Where a step's record is (the NWB step's record is its group's)."""
    layout = ResultsLayout(results)
    return layout.step_record(step, export_group(stream) if step == "nwb" else stream)


def outcome(results: Path) -> dict:
    """What must equal between two runs: curated spike trains, metric and label tables, NWB units.

    Returns
    -------
    dict
        ``spike_trains`` (unit id -> sample indices), ``quality_metrics`` and ``unit_labels`` (CSV text of the
        tables, without :data:`NONDETERMINISTIC_METRICS`), ``nwb_units`` (unit name -> spike times in seconds).
    """
    import pandas as pd
    import spikeinterface as si
    from pynwb import NWBHDF5IO

    layout = ResultsLayout(results)
    (stream,) = layout.streams()
    sorting = si.load(layout.step_output("curate", stream))
    analyzer = si.load_sorting_analyzer(layout.step_output("postprocess", stream), load_extensions=False)
    metrics = analyzer.get_extension("quality_metrics").get_data().drop(columns=list(NONDETERMINISTIC_METRICS),
                                                                       errors="ignore")
    labels = pd.read_csv(layout.unit_labels_csv(stream)).drop(columns=list(NONDETERMINISTIC_METRICS),
                                                              errors="ignore")
    (nwb_file,) = layout.session_step_output("nwb", export_group(stream)).glob("*.nwb")
    with NWBHDF5IO(str(nwb_file), "r") as io:
        units = io.read().units.to_dataframe()
        nwb_units = {str(name): [round(t, 9) for t in times] for name, times in zip(units["unit_name"],
                                                                                    units["spike_times"])}
    return {
        "spike_trains": {str(u): sorting.get_unit_spike_train(u).tolist() for u in sorting.unit_ids},
        "quality_metrics": metrics.round(9).to_csv(),
        "unit_labels": labels.round(9).to_csv(index=False),
        "nwb_units": nwb_units,
    }


def leftovers(results: Path) -> list[Path]:
    """Temporary folders and files a step or a record write leaves when it is interrupted."""
    return [p for p in results.rglob(".*") if p.name.endswith((".tmp", ".sorter", ".motion", ".writing"))
            or ".old-" in p.name]


#: Where the reference run is kept for the test session (``reference`` is imported by several test modules, each
#: of which gets its own fixture definition; the run happens once).
_REFERENCE = pytest.StashKey[Reference]()


@pytest.fixture(scope="session")
def reference(request, tmp_path_factory) -> Reference:
    """One uninterrupted run of the fault tests' session and configuration (once per test session)."""
    if _REFERENCE not in request.config.stash:
        request.config.stash[_REFERENCE] = _reference_run(tmp_path_factory)
    return request.config.stash[_REFERENCE]


def _reference_run(tmp_path_factory) -> Reference:
    root = tmp_path_factory.mktemp("reliability_reference")
    session = make_spikeglx_session(root / "data", num_channels=16, duration_s=10.0, num_units=4, seed=5)
    config = root / "config.yaml"
    config.write_text(CONFIG)
    results = root / "reference"
    t0 = time.perf_counter()
    code, output = run(session.data_dir, results, config)
    assert code == 0, output
    duration_s = time.perf_counter() - t0
    (stream,) = ResultsLayout(results).streams()
    durations = {step: read_json(step_record_path(results, step, stream))["duration_s"] for step in STEPS}
    return Reference(session.data_dir, config, results, stream, duration_s, durations, outcome(results))


@contextmanager
def tmpfs(folder: Path, size_bytes: int):
    """Mount a tmpfs of ``size_bytes`` at ``folder`` for the duration of the block (skips the test if mounting
    is not permitted here)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs at {folder} ({done.stderr.strip() or done.returncode}): the full-disk "
                    "tests need root or CAP_SYS_ADMIN")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def resize_tmpfs(folder: Path, size_bytes: int) -> None:
    """Grow (or shrink) a mounted tmpfs: 'freeing space' without touching what is on it."""
    subprocess.run(["mount", "-o", f"remount,size={size_bytes}", str(folder)], check=True, capture_output=True)
