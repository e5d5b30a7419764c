"""A full results disk: the run fails with a message that names the disk and the space needed, leaves nothing a
rerun trusts, and completes once space is freed.

The results folder is a tmpfs of a few MiB mounted by the test (tests run as root here; skipped otherwise). Two
cases: a step that fills the disk while it writes (a step written for the test, so the moment is exact), and the
real pipeline (``spikeline run``, Kilosort4) resuming the reference session after its sort step on a tmpfs with
2 MiB left: the analyzer's expected size (from the spikes the sort found) does not fit, and the step is refused
before it starts. A memory-mapped write on a full disk (the analyzer's waveforms are written that way) kills the
process with SIGBUS instead of raising an error: the last test shows that the crash is recorded in the step's log
and explained by the next run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from faults import leftovers, outcome, reference, resize_tmpfs, run, step_record_path, tmpfs  # noqa: F401

from spikeline.config import build_config
from spikeline.diskspace import STEP_MIN_BYTES, expected_step_bytes, human_bytes
from spikeline.errors import StepFailed
from spikeline.layout import ResultsLayout
from spikeline.provenance import STATUS_FAILED, STATUS_OK, read_json
from spikeline.steps.base import Step, StepContext, execute_step

MIB = 1 << 20
STREAM = "block0_imec0.ap_recording1"


def _fake_step(write_bytes: int, calls: list) -> Step:
    """A ``preprocess`` step that writes ``write_bytes`` into its output (in 256 KiB blocks)."""

    def run(ctx, inputs, output):
        calls.append(output)
        output.mkdir(parents=True)
        with open(output / "traces.raw", "wb") as f:
            for _ in range(0, write_bytes, 256 * 1024):
                f.write(b"\1" * (256 * 1024))
                f.flush()
        return {"written_bytes": write_bytes}

    return Step(name="preprocess", inputs=("job",), params=lambda config: {"write_bytes": write_bytes}, run=run)


def _context(results: Path, duration_s: float) -> StepContext:
    layout = ResultsLayout(results)
    layout.jobs_dir.mkdir(parents=True, exist_ok=True)
    job = {"stream": STREAM, "duration_s": duration_s, "sampling_frequency_hz": 30000.0, "num_channels": 16}
    layout.job_file(STREAM).write_text(json.dumps(job))
    return StepContext(stream=STREAM, layout=layout, config=build_config({"job": {"progress_bar": False}}))


def test_a_step_that_fills_the_disk_fails_clearly_and_succeeds_after_space_is_freed(tmp_path):
    with tmpfs(tmp_path / "disk", 4 * MIB) as disk:
        ctx = _context(disk / "results", duration_s=0.1)  # estimate: the 1 MiB minimum, so the step starts
        calls = []
        step = _fake_step(8 * MIB, calls)
        with pytest.raises(StepFailed) as failure:
            execute_step(step, ctx)
        message = str(failure.value)
        assert calls, "the step should have started: the estimate fits"
        assert "no space left on the results disk" in message and "filled up while the step was writing" in message
        assert f"mounted at {disk}" in message and "MiB free" in message and "needs more than that" in message
        record = read_json(ctx.layout.step_record("preprocess", STREAM))
        assert record["status"] == STATUS_FAILED and record["needed_bytes"] > 3 * MIB
        assert not ctx.layout.step_output("preprocess", STREAM).exists() and not leftovers(disk)

        resize_tmpfs(disk, 16 * MIB)
        record = execute_step(step, ctx)
        assert record["status"] == STATUS_OK and not record.get("reused")
        assert (ctx.layout.step_output("preprocess", STREAM) / "traces.raw").stat().st_size == 8 * MIB


def test_a_step_that_cannot_fit_is_refused_before_it_starts(tmp_path):
    with tmpfs(tmp_path / "disk", 4 * MIB) as disk:
        ctx = _context(disk / "results", duration_s=10.0)  # 16 channels x 10 s x 2 bytes: 9.2 MiB expected
        calls = []
        with pytest.raises(StepFailed) as failure:
            execute_step(_fake_step(MIB, calls), ctx)
        needed = expected_step_bytes("preprocess", [ctx.layout.job_file(STREAM)])
        assert needed == 16 * 300_000 * 2 > STEP_MIN_BYTES and not calls
        message = str(failure.value)
        assert "not enough free space to start the step" in message and f"mounted at {disk}" in message
        assert f"needs about {human_bytes(needed)}" in message
        assert read_json(ctx.layout.step_record("preprocess", STREAM))["status"] == STATUS_FAILED
        assert not leftovers(disk)


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _copy_done_steps(reference: Path, results: Path, stream: str, steps: tuple[str, ...]) -> None:
    """What a run leaves once ``steps`` are done: jobs, dispatch record, those steps' records, logs and outputs."""
    ref, new = ResultsLayout(reference), ResultsLayout(results)
    shutil.copytree(ref.jobs_dir, new.jobs_dir)
    new.step_record(steps[0], stream).parent.mkdir(parents=True)
    shutil.copy2(ref.dispatch_record, new.dispatch_record)
    for step in steps:
        shutil.copy2(ref.step_record(step, stream), new.step_record(step, stream))
        shutil.copytree(ref.step_output(step, stream), new.step_output(step, stream), symlinks=True)


def test_pipeline_on_a_full_disk_fails_clearly_and_completes_after_space_is_freed(reference, tmp_path):
    """Resuming after sort with 2 MiB left: the analyzer (4 MiB of waveforms) is refused before it starts."""
    staging = tmp_path / "staging"  # a run that finished preprocessing and sorting (the expensive part)
    _copy_done_steps(reference.results, staging, reference.stream, ("preprocess", "sort"))
    size_bytes = _tree_bytes(staging) + 2 * MIB
    with tmpfs(tmp_path / "disk", size_bytes) as disk:
        results = disk / "results"
        shutil.copytree(staging, results, symlinks=True)
        code, output = run(reference.data_dir, results, reference.config)
        assert code != 0, output
        assert "no space left on the results disk" in output and f"mounted at {disk}" in output, output
        assert "postprocess" in output and "MiB free" in output and "needs about" in output, output
        layout = ResultsLayout(results)
        for step in ("preprocess", "sort"):
            assert read_json(step_record_path(results, step, reference.stream))["status"] == STATUS_OK
        failed = read_json(step_record_path(results, "postprocess", reference.stream))
        assert failed["status"] == STATUS_FAILED and "mounted at" in failed["error"], failed
        assert failed["needed_bytes"] > failed["free_bytes"]
        assert not layout.step_output("postprocess", reference.stream).exists()
        assert not (results / "curated").exists() and not (results / "nwb").exists()
        assert not leftovers(results)

        resize_tmpfs(disk, 4 * _tree_bytes(reference.results) + 16 * MIB)  # space freed
        code, output = run(reference.data_dir, results, reference.config)
        assert code == 0, output
        assert outcome(results) == reference.outcome
        for step in ("preprocess", "sort"):  # reused, not redone
            record = read_json(step_record_path(results, step, reference.stream))
            assert record == read_json(step_record_path(reference.results, step, reference.stream))
        assert not leftovers(results)


CRASHING_STEP = """
import json, sys
from pathlib import Path
import numpy as np
from spikeline.config import build_config
from spikeline.layout import ResultsLayout
from spikeline.steps.base import Step, StepContext, execute_step

def run(ctx, inputs, output):
    output.mkdir(parents=True)
    waveforms = np.lib.format.open_memmap(output / "waveforms.npy", mode="w+", dtype="float32", shape=(4 << 20,))
    waveforms[:] = 1.0  # the pages cannot be backed on the full disk: SIGBUS, not an OSError
    return {}

layout = ResultsLayout(Path(sys.argv[1]))
ctx = StepContext(stream=sys.argv[2], layout=layout, config=build_config({"job": {"progress_bar": False}}))
execute_step(Step(name="preprocess", inputs=("job",), params=lambda config: {}, run=run), ctx)
"""


def test_a_memory_mapped_write_on_a_full_disk_is_diagnosed_on_the_rerun(tmp_path, caplog):
    """A bus error kills the process (nothing Python can catch); its traceback lands in the step's log, and the
    next run says what happened and how much space the disk has, then runs the step again."""
    import subprocess
    import sys

    script = tmp_path / "crash.py"
    script.write_text(CRASHING_STEP)
    with tmpfs(tmp_path / "disk", 4 * MIB) as disk:
        ctx = _context(disk / "results", duration_s=0.1)
        done = subprocess.run([sys.executable, str(script), str(ctx.layout.root), STREAM], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode < 0 or done.returncode > 128, done  # killed by a signal (SIGBUS)
        assert read_json(ctx.layout.step_record("preprocess", STREAM))["status"] == "running"  # never trusted
        assert "Bus error" in ctx.layout.step_log("preprocess", STREAM).read_text(errors="replace")

        calls = []
        with caplog.at_level("WARNING", logger="spikeline"):
            record = execute_step(_fake_step(MIB, calls), ctx)
        assert record["status"] == STATUS_OK and calls
        warning = " ".join(r.getMessage() for r in caplog.records)
        assert "crashed with a bus error" in warning and f"({disk})" in warning and "free now" in warning
        assert not leftovers(disk)
