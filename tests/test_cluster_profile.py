"""Cluster profile, job resources, the job graph and the head-job script (no scheduler needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from spikeline.cli import main
from spikeline.cluster.profile import ClusterProfile, job_resources, load_profile, probe_hours, uses_gpu
from spikeline.cluster.submit import plan_jobs, rule_resources, snakemake_command
from spikeline.errors import ConfigError
from spikeline.layout import ResultsLayout

from conftest import quiet_config


def test_unknown_profile_key_lists_the_valid_ones(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text("partition: cpu\nsteps:\n  sort: {gpus: 2}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_profile(path)
    message = str(excinfo.value)
    assert "steps.sort.gpus" in message and "runtime_floor_min" in message and str(path) in message
    path.write_text("retries: -1\n")
    with pytest.raises(ConfigError, match="retries"):
        load_profile(path)


def test_resources_scale_with_probe_hours_and_only_gpu_sorting_asks_for_a_gpu():
    profile = ClusterProfile(partition="cpu", gpu_partition="gpu", gpu_gres="gpu:a100:1", account="lab",
                             extra_sbatch=["--constraint=intel"])
    one_probe_hour = probe_hours(3600.0, 384)
    assert one_probe_hour == pytest.approx(1.0) and probe_hours(1800.0, 96) == pytest.approx(0.125)
    small = job_resources(profile, "sort", 0.0, gpu=True)
    big = job_resources(profile, "sort", 2.0, gpu=True)
    sort = profile.steps.sort
    assert small["runtime"] == sort.runtime_floor_min
    assert big["runtime"] == sort.runtime_floor_min + 2 * sort.runtime_min_per_probe_hour
    assert big["mem_mb"] == 1000 * (sort.mem_floor_gb + 2 * sort.mem_gb_per_probe_hour)
    assert big["gres"] == "gpu:a100:1" and big["slurm_partition"] == "gpu" and big["slurm_account"] == "lab"
    cpu = job_resources(profile, "preprocess", 2.0, gpu=False)
    assert "gres" not in cpu and cpu["slurm_partition"] == "cpu" and cpu["slurm_extra"] == "--constraint=intel"
    assert uses_gpu("sort", "kilosort4", {"torch_device": "auto"})
    assert not uses_gpu("sort", "kilosort4", {"torch_device": "cpu"})
    assert not uses_gpu("sort", "spykingcircus2", {}) and not uses_gpu("preprocess", "kilosort4", {})
    assert uses_gpu("sort", "kilosort25", {})


def test_snakemake_command_uses_squeue_and_retries():
    command = snakemake_command(__import__("pathlib").Path("/tmp/sub"), ClusterProfile(retries=2, max_jobs=7))
    text = " ".join(command)
    assert "--executor slurm" in text and "--slurm-status-command squeue" in text and "--retries 2" in text
    assert "--jobs 7" in text and "--keep-going" in text and "--slurm-no-account" in text


def test_job_graph_runs_only_what_is_not_current(ks4_run, tmp_path):
    """After a local run the job graph is empty; a new curation threshold plans curate onwards, with NWB last."""
    _, results, _ = ks4_run
    layouts = {"s": ResultsLayout(results)}
    config_file = tmp_path / "config.yaml"
    assert plan_jobs(layouts, quiet_config(), ClusterProfile(), config_file, sys.executable) == {}

    changed = quiet_config(curation={"default_qc": {"presence_ratio": {"greater": 0.5}}})
    jobs = plan_jobs(layouts, changed, ClusterProfile(), config_file, sys.executable)
    (stream,) = ResultsLayout(results).streams()
    steps = [job["step"] for job in jobs.values()]
    assert steps[:2] == ["curate", "visualize"] and steps[-1] == "nwb"
    assert jobs[f"s/{stream}/curate"]["deps"] == []
    assert jobs[f"s/{stream}/visualize"]["deps"] == [f"s/{stream}/curate"]
    assert jobs["s/block0_recording1/nwb"]["deps"] == [f"s/{stream}/{steps[len(steps) - 2]}"]
    command = jobs[f"s/{stream}/curate"]["command"]
    assert "spikeline.cli step curate" in command and str(config_file) in command
    assert "gres" not in rule_resources(jobs)["curate"]


def test_slurm_script_and_profile_commands(tmp_path):
    runner = CliRunner()
    profile = tmp_path / "profile.yaml"
    result = runner.invoke(main, ["slurm-profile", "-o", str(profile)])
    assert result.exit_code == 0, result.output
    assert load_profile(profile) == ClusterProfile()  # the commented template is itself a valid profile
    script = tmp_path / "head.slurm"
    result = runner.invoke(main, ["slurm-script", str(tmp_path / "my data"), "--results", str(tmp_path / "res"),
                                  "--profile", str(profile), "--partition", "short", "--time", "12:00:00",
                                  "-o", str(script)])
    assert result.exit_code == 0, result.output
    text = script.read_text()
    assert "#SBATCH --partition=short" in text and "#SBATCH --time=12:00:00" in text
    assert "--executor slurm" in text and f"--profile {profile}" in text and "'" in text  # the space is quoted
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert yaml.safe_load(profile.read_text())["retries"] == 1


def test_status_of_a_local_run(ks4_run):
    _, results, summary = ks4_run
    result = CliRunner().invoke(main, ["status", str(results)])
    assert result.exit_code == 0, result.output
    (stream,) = ResultsLayout(results).streams()
    line = next(line for line in result.output.splitlines() if stream in line)
    assert " done " in line and "sort:done" in line and str(summary.streams[0].num_units) in line
    assert "total: 2 done, 0 running, 0 pending, 0 skipped, 0 failed" in result.output  # the stream and its NWB
