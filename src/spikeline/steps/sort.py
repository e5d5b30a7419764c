"""Sort: run the configured sorter through SpikeInterface on the preprocessed recording.

Kilosort4 is the default (``torch_device="auto"``: CUDA when present, CPU otherwise); SpyKING CIRCUS 2,
Tridesclous 2, MountainSort 5 and Lupin run on CPU; Kilosort 2.5 needs MATLAB or a local container image and
fails before any work without one. Parameter overrides are checked against the installed sorter before any work (see
:meth:`spikeline.config.SpikeSortingParams.resolved_sorter_params`). As in the AIND pipeline, the sorter's own
drift correction is turned off below ``min_drift_channels`` channels or when ``skip_motion_correction`` is set.

Output: ``spikesorted/<stream>/`` is a SpikeInterface sorting folder (spikes beyond the recording end and empty
units removed); ``spikesorted/<stream>/sorter/`` keeps the sorter's own folder (its log, parameters, and native
output such as Kilosort's Phy files).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from ..config import SI_SORTER_NAMES, PipelineConfig
from ..layout import SORTER_SUBFOLDER, temporary_sibling
from ..provenance import read_json, remove_path
from .base import Step, StepContext

logger = logging.getLogger("spikeline")

#: Sorter parameter that switches the sorter's own drift correction, and its "off" value, per sorter.
DRIFT_CORRECTION_OFF = {"kilosort4": ("do_correction", False), "spykingcircus2": ("apply_motion_correction", False),
                        "tridesclous2": ("apply_motion_correction", False), "lupin": ("apply_motion_correction", False),
                        "kilosort25": ("nblocks", 0)}


def params(config: PipelineConfig) -> dict[str, Any]:
    s = config.spikesorting
    return {
        "sorter": s.sorter,
        "sorter_params": s.resolved_sorter_params(),
        "skip_motion_correction": s.skip_motion_correction,
        "min_drift_channels": s.min_drift_channels,
    }


def sorter_arguments(sorter: str, overrides: dict[str, Any], num_channels: int, skip_motion_correction: bool,
                     min_drift_channels: int, job_kwargs: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The keyword arguments passed to ``run_sorter``, and why drift correction was turned off (if it was).

    Parameters
    ----------
    sorter : str
        Sorter name.
    overrides : dict
        Validated user overrides.
    num_channels : int
        Channels of the recording to sort.
    skip_motion_correction : bool
        Turn the sorter's drift correction off.
    min_drift_channels : int
        Turn it off below this many channels.
    job_kwargs : dict
        spikeline's job kwargs, passed to sorters that take them.

    Returns
    -------
    kwargs : dict
    drift_off_reason : str | None
    """
    import spikeinterface.sorters as ss

    kwargs = dict(overrides)
    defaults = ss.get_default_sorter_params(SI_SORTER_NAMES.get(sorter, sorter))
    if "job_kwargs" in defaults and "job_kwargs" not in kwargs:
        kwargs["job_kwargs"] = {k: v for k, v in job_kwargs.items() if k in ("n_jobs", "chunk_duration", "progress_bar")}
    reason = None
    if skip_motion_correction:
        reason = "skip_motion_correction is set"
    elif num_channels < min_drift_channels:
        reason = f"{num_channels} channels < min_drift_channels={min_drift_channels}"
    drift_param, off_value = DRIFT_CORRECTION_OFF.get(sorter, (None, None))
    if reason and drift_param and drift_param not in overrides:
        kwargs[drift_param] = off_value
    return kwargs, reason


def _keep_sorter_logs(work: Path, destination: Path) -> None:
    """Copy the sorter's own logs out of its (about to be removed) folder, for the user to read."""
    for name in ("spikeinterface_log.json", "sorter_output/kilosort4.log"):
        source = work / name
        if source.exists():
            destination.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, destination / f"sorter_{Path(name).name}")


def _compute_device(sorter: str, kwargs: dict[str, Any]) -> str:
    """Where the sorter ran: ``cuda`` or ``cpu`` for Kilosort4 (torch), ``cpu`` for the others."""
    if sorter != "kilosort4":
        return "cpu"
    import torch

    requested = kwargs.get("torch_device", "auto")
    return ("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else str(requested)


def run(ctx: StepContext, inputs: dict[str, Path], output: Path) -> dict[str, Any]:
    import spikeinterface as si
    import spikeinterface.sorters as ss
    from spikeinterface.curation import remove_excess_spikes

    p = params(ctx.config)
    recording = si.load(inputs["preprocess"])
    kwargs, drift_off_reason = sorter_arguments(
        p["sorter"], p["sorter_params"], recording.get_num_channels(), p["skip_motion_correction"],
        p["min_drift_channels"], ctx.job_kwargs,
    )
    if drift_off_reason:
        logger.info("%s drift correction off: %s", p["sorter"], drift_off_reason)
    work = temporary_sibling(ctx.layout.step_output("sort", ctx.stream), "sorter")
    remove_path(work)
    try:
        try:
            sorting = ss.run_sorter(ctx.config.spikesorting.si_sorter_name, recording, folder=work,
                                    remove_existing_folder=True, verbose=False,
                                    **ctx.config.spikesorting.container_runtime(), **kwargs)
        except Exception:
            _keep_sorter_logs(work, ctx.layout.step_log("sort", ctx.stream).parent)
            raise
        sorting = remove_excess_spikes(sorting, recording).remove_empty_units()
        sorting.save(folder=output, format="numpy_folder")
        log = read_json(work / "spikeinterface_log.json") or {}
        shutil.move(str(work), str(output / SORTER_SUBFOLDER))
    finally:
        remove_path(work)
    return {
        "device": _compute_device(p["sorter"], kwargs),
        "sorter": p["sorter"],
        "sorter_version": log.get("sorter_version"),
        "sorter_run_time_s": log.get("run_time"),
        "sorter_kwargs": kwargs,
        "drift_correction_off_reason": drift_off_reason,
        "num_units": int(sorting.get_num_units()),
        "num_spikes": int(sorting.count_total_num_spikes()),
    }


STEP = Step(name="sort", inputs=("preprocess",), params=params, run=run, extra_packages=("kilosort", "torch"))
