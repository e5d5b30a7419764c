"""kill -9 in the middle of a run: the rerun completes, and its results equal those of an uninterrupted run.

The run is a real ``spikeline run`` process on a tiny SpikeGLX session (Kilosort4 on CPU, which is deterministic
here, unlike SpyKING CIRCUS 2; motion and NWB off), killed with SIGKILL after a delay drawn from a seeded
generator, so that each seed lands at another point of the run. One seed runs by default, more with ``-m slow``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spikeline.layout import ResultsLayout
from spikeline.synthetic import make_spikeglx_session

CONFIG = "job: {progress_bar: false, n_jobs: 1}\nspikesorting: {sorter: kilosort4}\npreprocessing: {motion: skip}\n" \
         "export: {nwb: {enabled: false}}\n"
SEEDS = (1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow))


def _run(data: Path, results: Path, config: Path, kill_after_s: float | None = None) -> int:
    command = [sys.executable, "-m", "spikeline.cli", "run", str(data), "--results", str(results),
               "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    if kill_after_s is None:
        return process.wait(timeout=600)
    time.sleep(kill_after_s)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)  # the run and any worker it started
    return process.wait(timeout=60)


def _spike_trains(results: Path) -> dict:
    import spikeinterface as si

    layout = ResultsLayout(results)
    (stream,) = layout.streams()
    sorting = si.load(layout.step_output("curate", stream))
    return {str(u): sorting.get_unit_spike_train(u).tolist() for u in sorting.unit_ids}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    session = make_spikeglx_session(root / "data", num_channels=16, duration_s=10.0, num_units=4, seed=5)
    config = root / "config.yaml"
    config.write_text(CONFIG)
    t0 = time.perf_counter()
    assert _run(session.data_dir, root / "reference", config) == 0
    return session, config, time.perf_counter() - t0, _spike_trains(root / "reference")


@pytest.mark.parametrize("seed", SEEDS)
def test_rerun_after_kill_equals_an_uninterrupted_run(reference, tmp_path, seed):
    session, config, duration_s, expected = reference
    results = tmp_path / "results"
    kill_after_s = random.Random(seed).uniform(0.2, 0.9) * duration_s
    _run(session.data_dir, results, config, kill_after_s=kill_after_s)
    assert _run(session.data_dir, results, config) == 0
    assert _spike_trains(results) == expected
    assert not list(results.rglob(".*.tmp")) and not list(results.rglob(".*.sorter"))  # no leftovers trusted or kept
