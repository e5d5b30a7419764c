"""kill -9 in the middle of a run: the rerun completes, and its results equal those of an uninterrupted run.

The runs are real ``spikeline run`` processes on the tiny session of the shared reference (Kilosort4 on CPU, which
is deterministic here, unlike SpyKING CIRCUS 2; Phy and NWB on), killed with SIGKILL sent to the whole process
group. Two harnesses:

* aimed: one results folder, killed once inside each step in turn (preprocess, sort, postprocess, curate,
  visualize, export_phy, nwb). The harness waits until the step's record says ``running`` (the record is the
  first thing a step writes), then waits a seeded random fraction (10-90 %) of that step's duration in the
  reference run, then kills. After each kill, every record that says ``ok`` has its output; after the last, a
  rerun completes and equals the reference (spike trains, metric and label tables, NWB units).
* random: a fresh results folder killed after a seeded random delay (20-90 % of the reference run).

One aimed seed runs by default; more aimed and random seeds with ``-m slow``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from faults import STEPS, finish, kill, leftovers, outcome, reference, run, start_run, step_record_path  # noqa: F401

from spikeline.provenance import STATUS_OK, STATUS_RUNNING, read_json

AIMED_SEEDS = (1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow))
RANDOM_SEEDS = (pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow),
                pytest.param(3, marks=pytest.mark.slow))


def _wait_until_running(process, record: Path, since_ns: int, timeout_s: float = 600) -> bool:
    """Wait until ``record`` says ``running`` and was written after ``since_ns``; False if the run ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            fresh = record.stat().st_mtime_ns >= since_ns
        except FileNotFoundError:
            fresh = False
        if fresh and (read_json(record) or {}).get("status") == STATUS_RUNNING:
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.02)
    raise TimeoutError(f"{record} never said running")


def _wait_while_running(record: Path, seconds: float) -> None:
    """Wait ``seconds``, or less if ``record`` stops saying ``running`` first.

    The wait is a fraction of the step's duration in the reference run, and this run can be faster (the reference
    ran while the machine was busier): without this bound the kill could land several steps later, or after the
    run had finished, and the next iteration would find nothing left to kill. With it, the kill lands inside the
    step, or within one poll of its end.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (read_json(record) or {}).get("status") == STATUS_RUNNING:
        time.sleep(0.02)


def _trusted_outputs_are_whole(results: Path, stream: str) -> None:
    """Every record that says ``ok`` has its output folder in place (nothing half-written is trusted)."""
    for step in STEPS:
        record = read_json(step_record_path(results, step, stream))
        if record and record.get("status") == STATUS_OK:
            assert Path(record["output_location"]).exists(), f"{step} says ok without its output"


@pytest.mark.parametrize("seed", AIMED_SEEDS)
def test_kill_inside_each_step_then_rerun_equals_an_uninterrupted_run(reference, tmp_path, seed):
    rng = random.Random(seed)
    results = tmp_path / "results"
    landed = {}
    for step in STEPS:
        record = step_record_path(results, step, reference.stream)
        since_ns = time.time_ns()
        process = start_run(reference.data_dir, results, reference.config)
        started = _wait_until_running(process, record, since_ns)
        assert started, f"the run ended before {step} started: {finish(process)[1][-3000:]}"
        fraction = rng.uniform(0.1, 0.9)
        _wait_while_running(record, fraction * reference.step_durations_s[step])
        kill(process)
        running = [s for s in STEPS
                   if (read_json(step_record_path(results, s, reference.stream)) or {}).get("status")
                   == STATUS_RUNNING]
        landed[step] = (round(fraction, 2), running)
        _trusted_outputs_are_whole(results, reference.stream)
    print(f"seed {seed}: step -> (fraction of its reference duration, steps left running by the kill): {landed}")
    code, output = run(reference.data_dir, results, reference.config)
    assert code == 0, output
    assert outcome(results) == reference.outcome
    assert not leftovers(results)


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_rerun_after_a_random_kill_equals_an_uninterrupted_run(reference, tmp_path, seed):
    results = tmp_path / "results"
    process = start_run(reference.data_dir, results, reference.config)
    time.sleep(random.Random(seed).uniform(0.2, 0.9) * reference.duration_s)
    kill(process)
    code, output = run(reference.data_dir, results, reference.config)
    assert code == 0, output
    assert outcome(results) == reference.outcome
    assert not leftovers(results)
