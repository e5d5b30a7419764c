"""The cluster profile: where jobs go and how much each step asks for.

A profile is one YAML file (or none: every field has a default). It never changes *what* a step computes,
only where and with which limits it runs; the same step code runs locally and on the cluster.

Time and memory of a job grow with the size of its stream, counted in *probe-hours*: the recording's duration
in hours times its channel count over 384 (one hour of one Neuropixels probe is 1 probe-hour). Each step has a
floor and a slope::

    runtime_min = runtime_floor_min + runtime_min_per_probe_hour * probe_hours
    mem_gb      = mem_floor_gb      + mem_gb_per_probe_hour      * probe_hours

and a job killed by its time or memory limit is resubmitted (``retries`` times) with both multiplied by
``retry_factor`` each time. Only the sort step of a GPU sorter (Kilosort4 unless it is pinned to the CPU,
Kilosort2.5) asks for a GPU.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError

#: Sorters that run on a GPU when the job has one.
GPU_SORTERS = ("kilosort4", "kilosort25")
#: Channels of one Neuropixels probe: the unit of the probe-hour.
CHANNELS_PER_PROBE = 384


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StepResources(_Model):
    """Resources of one step's jobs (see the module docstring for how they scale)."""

    cpus: int = Field(4, ge=1, description="CPU cores per job (also the step's n_jobs).")
    mem_floor_gb: float = Field(8.0, gt=0, description="Memory for the smallest stream, in GB.")
    mem_gb_per_probe_hour: float = Field(0.0, ge=0, description="Extra memory per probe-hour, in GB.")
    runtime_floor_min: float = Field(30.0, gt=0, description="Time limit for the smallest stream, in minutes.")
    runtime_min_per_probe_hour: float = Field(240.0, ge=0, description="Extra time per probe-hour, in minutes.")


def _resources(**values: Any) -> Any:
    return Field(default_factory=lambda: StepResources(**values))


class StepsResources(_Model):
    """Per-step resources. Defaults follow the AIND SLURM configuration (16 cores, 64 GB, 4x the recording's
    duration for the heavy steps), with a doubled sorting budget (4x proved too tight for Kilosort4)."""

    preprocess: StepResources = _resources(cpus=8, mem_floor_gb=16, runtime_floor_min=30,
                                           runtime_min_per_probe_hour=240)
    sort: StepResources = _resources(cpus=8, mem_floor_gb=32, mem_gb_per_probe_hour=8, runtime_floor_min=60,
                                     runtime_min_per_probe_hour=480)
    postprocess: StepResources = _resources(cpus=8, mem_floor_gb=16, mem_gb_per_probe_hour=2, runtime_floor_min=30,
                                            runtime_min_per_probe_hour=240)
    curate: StepResources = _resources(cpus=2, mem_floor_gb=8, runtime_floor_min=10, runtime_min_per_probe_hour=10)
    visualize: StepResources = _resources(cpus=2, mem_floor_gb=8, runtime_floor_min=15, runtime_min_per_probe_hour=60)
    export_phy: StepResources = _resources(cpus=4, mem_floor_gb=16, runtime_floor_min=15,
                                           runtime_min_per_probe_hour=60)
    nwb: StepResources = _resources(cpus=4, mem_floor_gb=16, runtime_floor_min=20, runtime_min_per_probe_hour=120)


class ClusterProfile(_Model):
    """Where and how spikeline submits its jobs (``spikeline run --executor slurm --profile FILE``)."""

    partition: str | None = Field(None, description="Partition of CPU jobs (none: the cluster's default).")
    account: str | None = Field(None, description="Account charged (--account); none: no --account is passed.")
    qos: str | None = Field(None, description="Quality of service (--qos), if your cluster uses one.")
    gpu_partition: str | None = Field(None, description="Partition of GPU sort jobs (none: `partition`).")
    gpu_gres: str = Field("gpu:1", description="GRES of GPU sort jobs, as `--gres` takes it (gpu:1, gpu:a100:1).")
    extra_sbatch: list[str] = Field(default_factory=list,
                                    description="More sbatch arguments for every job, e.g. ['--constraint=intel'].")
    max_jobs: int = Field(50, ge=1, description="Jobs queued or running at once.")
    retries: int = Field(1, ge=0, description="Resubmissions of a job killed by its time or memory limit.")
    retry_factor: float = Field(2.0, ge=1.0, description="Time and memory multiplier at each resubmission.")
    status_command: Literal["squeue", "sacct"] = Field(
        "squeue", description="How job states are read: squeue works everywhere (keep MinJobAge >= 120 s); sacct "
                              "needs accounting (slurmdbd).")
    status_interval_s: int = Field(20, ge=1, description="Seconds between job status checks.")
    latency_wait_s: int = Field(60, ge=0, description="Seconds to wait for a finished job's files on a shared "
                                                      "file system.")
    python: str | None = Field(None, description="Python interpreter on the compute nodes with spikeline installed "
                                                 "(none: the one running `spikeline run`).")
    steps: StepsResources = Field(default_factory=StepsResources, description="Per-step resources.")


def load_profile(path: str | Path | None = None) -> ClusterProfile:
    """Read and validate a cluster profile.

    Parameters
    ----------
    path : str | Path | None
        YAML file; ``None`` gives the defaults.

    Returns
    -------
    ClusterProfile

    Raises
    ------
    ConfigError
        If the file cannot be read, is not YAML, or holds an unknown key or an invalid value.
    """
    from ..config import _format_validation_error

    data: Any = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read cluster profile {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"cluster profile {path} is not valid YAML: {exc}") from None
    try:
        return ClusterProfile.model_validate(data)
    except ValidationError as exc:
        text = _format_validation_error(exc, ClusterProfile)
        raise ConfigError(text.replace("invalid configuration", f"invalid cluster profile {path}", 1)) from None


def probe_hours(duration_s: float, num_channels: int) -> float:
    """Size of a stream in probe-hours: hours of recording times channels over 384."""
    return duration_s / 3600.0 * num_channels / CHANNELS_PER_PROBE


def uses_gpu(step: str, sorter: str, sorter_params: dict[str, Any]) -> bool:
    """Whether a step's job asks for a GPU: only sorting, only with a GPU sorter not pinned to the CPU."""
    return step == "sort" and sorter in GPU_SORTERS and sorter_params.get("torch_device", "auto") != "cpu"


def job_resources(profile: ClusterProfile, step: str, size_probe_hours: float, gpu: bool) -> dict[str, Any]:
    """Snakemake resources of one job at its first attempt.

    Parameters
    ----------
    profile : ClusterProfile
        The profile.
    step : str
        Step name (``preprocess``, ``sort`` ... ``nwb``).
    size_probe_hours : float
        The stream's size (for a session-level step: the sum over its streams).
    gpu : bool
        Whether the job asks for a GPU (see :func:`uses_gpu`).

    Returns
    -------
    dict
        ``cpus_per_task``, ``mem_mb``, ``runtime`` (minutes) and, where set, ``slurm_partition``,
        ``slurm_account``, ``qos``, ``gres`` and ``slurm_extra``.
    """
    res = getattr(profile.steps, step)
    resources: dict[str, Any] = {
        "cpus_per_task": res.cpus,
        "mem_mb": int(math.ceil(1000 * (res.mem_floor_gb + res.mem_gb_per_probe_hour * size_probe_hours))),
        "runtime": int(math.ceil(res.runtime_floor_min + res.runtime_min_per_probe_hour * size_probe_hours)),
    }
    partition = (profile.gpu_partition or profile.partition) if gpu else profile.partition
    optional = {"slurm_partition": partition, "slurm_account": profile.account, "qos": profile.qos,
                "gres": profile.gpu_gres if gpu else None,
                "slurm_extra": " ".join(profile.extra_sbatch) if profile.extra_sbatch else None}
    resources.update({key: value for key, value in optional.items() if value})
    return resources


def default_profile_yaml() -> str:
    """The default profile as commented YAML, for users to copy and edit."""
    profile = ClusterProfile()
    lines = ["# spikeline cluster profile: `spikeline run DATA --results RESULTS --executor slurm --profile THIS`",
             "# Every key is optional; unknown keys are errors. Sizes scale with probe-hours (hours x channels/384)."]
    for name, field in ClusterProfile.model_fields.items():
        if name == "steps":
            continue
        lines.append(f"# {field.description}")
        lines.append(yaml.safe_dump({name: getattr(profile, name)}, default_flow_style=True, width=200).strip()
                     .removeprefix("{").removesuffix("}"))
    lines.append("# Per-step resources: cpus, mem_floor_gb, mem_gb_per_probe_hour, runtime_floor_min, "
                 "runtime_min_per_probe_hour")
    lines.append("steps:")
    for step, res in profile.steps.model_dump().items():
        lines.append(f"  {step}: " + yaml.safe_dump(res, default_flow_style=True, width=200).strip())
    return "\n".join(lines) + "\n"
