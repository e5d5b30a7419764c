"""Cluster runs on a real single-node SLURM (Debian's slurm-wlm, started by the tests) through Snakemake.

Two synthetic SpikeGLX sessions with two probes each go through ``spikeline run --executor slurm``: every step
of every stream is its own SLURM job (its job id is in the step's record), one sort job is killed with scancel
(that stream alone fails, with the reason; ``spikeline status`` says so), the resubmission runs only what is
missing, and the results equal a local run's (Kilosort4 pinned to the CPU is deterministic here).

Without SLURM on the machine these tests are skipped, except where ``SPIKELINE_REQUIRE_SLURM=1`` (CI sets it),
where they fail instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slurm_local import ensure_local_slurm, slurm_installed
from spikeline.cluster.submit import plan_summary
from spikeline.layout import ResultsLayout, cluster_dir
from spikeline.provenance import read_json
from spikeline.synthetic import make_spikeglx_session

STEPS = ("preprocess", "sort", "postprocess", "curate", "visualize")
CONFIG = {"job": {"progress_bar": False}, "preprocessing": {"motion": "skip"},
          "spikesorting": {"sorter": "kilosort4", "sorter_params": {"kilosort4": {"torch_device": "cpu"}}}}
# Small jobs for a 2-core test node; status checked every 2 s; no automatic retry (the test kills a job).
PROFILE = {"status_interval_s": 2, "latency_wait_s": 5, "retries": 0,
           "steps": {step: {"cpus": 1, "mem_floor_gb": 2, "runtime_floor_min": 20}
                     for step in (*STEPS, "export_phy", "nwb")}}

pytestmark = pytest.mark.skipif(not slurm_installed() and os.environ.get("SPIKELINE_REQUIRE_SLURM") != "1",
                                reason="SLURM is not installed (.ci/run installs slurm-wlm and munge)")


@pytest.fixture(scope="module")
def cluster():
    ensure_local_slurm()


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    data = root / "data"
    for seed, name in enumerate(("mouseA", "mouseB")):
        session = make_spikeglx_session(root / "gen" / name, run_name=name, num_probes=2, num_channels=16,
                                        duration_s=10.0, num_units=4, seed=20 + seed)
        data.mkdir(exist_ok=True)
        session.data_dir.rename(data / session.data_dir.name)
    (root / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (root / "profile.yaml").write_text(yaml.safe_dump(PROFILE))
    return root


def _spikeline(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "spikeline.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def _cluster_run(root: Path, results: Path) -> subprocess.Popen:
    return _spikeline("run", str(root / "data"), "--results", str(results), "--config", str(root / "config.yaml"),
                      "--executor", "slurm", "--profile", str(root / "profile.yaml"))


def _records(results: Path) -> dict[tuple[str, str, str], dict]:
    records = {}
    for session in ("mouseA_g0", "mouseB_g0"):
        for path in (results / session / "provenance").glob("*/*.json"):
            records[(session, path.parent.name, path.stem)] = read_json(path)
    return records


def _spike_trains(layout: ResultsLayout) -> dict:
    import spikeinterface as si

    trains = {}
    for stream in layout.streams():
        sorting = si.load(layout.step_output("curate", stream))
        trains[stream] = {str(u): sorting.get_unit_spike_train(u).tolist() for u in sorting.unit_ids}
    return trains


def _wait_for_running_sort(results: Path, session: str, stream: str, timeout_s: float = 900) -> str:
    """The SLURM job id of a sort step once its record says it is running inside a job."""
    deadline = time.monotonic() + timeout_s
    record_path = ResultsLayout(results / session).step_record("sort", stream)
    while time.monotonic() < deadline:
        record = read_json(record_path) or {}
        job_id = (record.get("machine") or {}).get("slurm_job_id")
        if record.get("status") == "running" and job_id:
            return job_id
        time.sleep(0.5)
    raise AssertionError(f"sort of {session}/{stream} never started")


def test_cluster_run_kill_resubmit_and_equal_to_local(cluster, sessions, tmp_path):
    results = tmp_path / "results"
    killed_session, killed_stream = "mouseA_g0", "block0_imec0.ap_recording1"

    # 1. submit; kill one sort job while it runs
    driver = _cluster_run(sessions, results)
    job_id = _wait_for_running_sort(results, killed_session, killed_stream)
    time.sleep(2)
    subprocess.run(["scancel", job_id], check=True)
    output = driver.communicate(timeout=1800)[0]
    assert driver.returncode == 1, output

    # only that stream failed, with the reason and the log; the three others and their NWB files completed
    records = _records(results)
    failed = {key for key, record in records.items() if record["status"] != "ok"}
    assert failed == {(killed_session, killed_stream, "sort")}, output
    reason = records[(killed_session, killed_stream, "sort")]["reason"]
    assert f"SLURM job {job_id} ended CANCELLED" in reason
    for session in ("mouseA_g0", "mouseB_g0"):
        for stream in ("block0_imec0.ap_recording1", "block0_imec1.ap_recording1"):
            if (session, stream) != (killed_session, killed_stream):
                assert all(records[(session, stream, step)]["status"] == "ok" for step in STEPS)
    assert records[("mouseB_g0", "block0_recording1", "nwb")]["status"] == "ok"
    assert ("mouseA_g0", "block0_recording1", "nwb") not in records  # it waits for its two streams

    # each step ran as its own SLURM job, recorded in its provenance
    job_ids = [record["machine"]["slurm_job_id"] for record in records.values()]
    assert all(job_ids) and len(set(job_ids)) == len(job_ids) == 3 * len(STEPS) + 2 + 1  # + killed preprocess, sort

    status = _spikeline("status", str(results)).communicate(timeout=120)[0]
    assert "ended CANCELLED" in status and "total: 4 done, 0 running, 1 pending, 0 skipped, 1 failed" in status, status

    # 2. resubmit: only the killed stream's steps and its session's NWB run
    driver = _cluster_run(sessions, results)
    output = driver.communicate(timeout=1800)[0]
    assert driver.returncode == 0, output
    first, second = sorted(cluster_dir(results).iterdir())
    resubmitted = {(job["session"], job["stream"], job["step"]) for job in plan_summary(second)["jobs"].values()}
    assert resubmitted == {(killed_session, killed_stream, step) for step in STEPS[1:]} | {
        (killed_session, "block0_recording1", "nwb")}
    assert all(record["status"] == "ok" for record in _records(results).values())
    status = _spikeline("status", str(results)).communicate(timeout=120)[0]
    assert "total: 6 done, 0 running, 0 pending, 0 skipped, 0 failed" in status, status

    # 3. the same session run locally gives the same units and spike trains
    local = tmp_path / "local"
    run = _spikeline("run", str(sessions / "data" / killed_session), "--results", str(local), "--config",
                     str(sessions / "config.yaml"))
    output = run.communicate(timeout=1800)[0]
    assert run.returncode == 0, output
    cluster_trains = _spike_trains(ResultsLayout(results / killed_session))
    assert cluster_trains == _spike_trains(ResultsLayout(local))
    assert sum(len(units) for units in cluster_trains.values()) > 0


def test_only_gpu_sort_jobs_ask_for_a_gpu(cluster, sessions, tmp_path):
    """Kilosort4 on auto device asks for the profile's GRES in its sort job, and no other job does. The test node
    has no GPU, so SLURM refuses that job: the stream fails with sbatch's message, before any sorting."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "mouseA_g0").symlink_to(sessions / "data" / "mouseA_g0")
    config = {**CONFIG, "spikesorting": {"sorter": "kilosort4"}, "export": {"nwb": {"enabled": False}},
              "dispatch": {"debug": True, "debug_duration_s": 3.0}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump({**PROFILE, "gpu_gres": "gpu:1", "max_jobs": 1}))
    results = tmp_path / "results"
    run = _spikeline("run", str(data / "mouseA_g0"), "--results", str(results), "--config",
                     str(tmp_path / "config.yaml"), "--executor", "slurm", "--profile", str(tmp_path / "profile.yaml"))
    output = run.communicate(timeout=900)[0]
    assert run.returncode == 1, output

    (submission,) = cluster_dir(results).iterdir()
    plan = plan_summary(submission)
    gres = {job["step"]: job["resources"].get("gres") for job in plan["jobs"].values()}
    assert gres.pop("sort") == "gpu:1" and not any(gres.values())
    log = (submission / "snakemake.log").read_text()
    sort_calls = [line for line in log.splitlines() if line.strip().startswith("sbatch ") and "rule_sort" in line]
    assert sort_calls and all("--gres=gpu:1" in line for line in sort_calls), log[-3000:]
    record = read_json(ResultsLayout(results).step_record("sort", "block0_imec0.ap_recording1"))
    assert record["status"] == "failed" and "never started" in record["reason"]
    assert "gres" in record["reason"].lower() or "generic resource" in record["reason"].lower()
