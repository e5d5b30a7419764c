"""Preprocess: phase shift, filter, bad channels, denoising, motion.

1. ``unsigned_to_signed`` for unsigned raw data; ``phase_shift`` when the probe has inter-sample shifts.
2. Highpass (default, 300 Hz) or bandpass filter.
3. Bad channels (IBL ``coherence+psd``; exactly flat channels count as dead): above ``max_bad_channel_fraction``
   the stream is skipped with its reason; otherwise dead/noisy channels are removed (or interpolated) and
   channels outside the brain removed.
4. Denoising: global median reference (``cmr``) or the IBL highpass spatial filter (``destripe``).
5. Motion: ``skip``; ``compute`` (default: the preprocessed recording is saved, then motion is estimated on it and
   saved, not applied); ``apply`` (motion is estimated on the lazy chain, and the interpolated recording saved).

The result is one SpikeInterface binary folder (``preprocessed/<stream>/``) that the sorter and the analyzer read
directly (no other copy), with the estimated motion in ``preprocessed/<stream>/motion/`` (load it with
``spikeinterface.load``). Full passes over the data: one (skip), two (compute: the saved binary is read once more
for peak detection), two (apply: the raw chain is read once for motion, once to save the corrected traces).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import PipelineConfig
from ..layout import MOTION_SUBFOLDER, temporary_sibling
from ..provenance import remove_path
from .base import Step, StepContext, StreamSkipped

logger = logging.getLogger("spikeline")

DEAD_OR_NOISY = ("dead", "noise")


def params(config: PipelineConfig) -> dict[str, Any]:
    return config.step_params("preprocessing")


def flat_channel_ids(recording, num_chunks: int = 20, chunk_size: int = 3000) -> list:
    """Channels whose samples are all identical in random chunks (disconnected or zeroed channels)."""
    from spikeinterface.core import get_random_data_chunks

    chunks = get_random_data_chunks(recording, num_chunks_per_segment=num_chunks, chunk_size=chunk_size, seed=0)
    return [c for c, std in zip(recording.channel_ids, chunks.std(axis=0)) if std == 0]


def channel_labels(recording, raw_recording, detect_kwargs: dict[str, Any]) -> dict[str, str]:
    """``good`` / ``dead`` / ``noise`` / ``out`` per channel id (IBL detector, plus flat channels as dead).

    Parameters
    ----------
    recording : BaseRecording
        The filtered recording the IBL detector labels.
    raw_recording : BaseRecording
        The same channels before any processing, checked for exactly flat channels (reading it costs no filtering,
        and a channel that is constant on disk stays constant through phase shift and filters).
    detect_kwargs : dict
        ``spikeinterface.preprocessing.detect_bad_channels`` arguments.

    Returns
    -------
    dict
        Label per channel id (as a string).
    """
    import spikeinterface.preprocessing as spre

    _, labels = spre.detect_bad_channels(recording, **detect_kwargs)
    result = {str(ch): str(label) for ch, label in zip(recording.channel_ids, labels)}
    # a channel that is exactly flat gives NaN coherence, which the IBL detector labels good: call it dead
    for channel_id in flat_channel_ids(raw_recording):
        result[str(channel_id)] = "dead"
    return result


def motion_kwargs(recording, p) -> dict[str, Any]:
    """Estimation windows scaled to the probe's span (as in the AIND pipeline), and the time bin."""
    import numpy as np

    span_um = float(np.ptp(recording.get_channel_locations()[:, 1])) or 1.0
    window_um = p.motion_window_fraction * span_um
    return {"win_step_um": window_um, "win_scale_um": window_um, "bin_s": p.motion_temporal_bin_s}


def _motion_facts(motion) -> dict[str, Any]:
    """What the step record says of an estimated motion."""
    import numpy as np

    displacement = np.concatenate([d.ravel() for d in motion.displacement])
    return {"motion_max_displacement_um": round(float(np.abs(displacement).max()), 3)}


def _estimate_motion(recording, p, folder: Path, job_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``compute`` mode: estimate and save motion; a failure is recorded, not fatal (the data are still sorted)."""
    import spikeinterface.preprocessing as spre

    try:
        motion = spre.compute_motion(recording, preset=p.motion_preset, folder=folder,
                                     estimate_motion_kwargs=motion_kwargs(recording, p), **job_kwargs)
    except Exception as exc:  # e.g. too few peaks on a short or quiet recording
        logger.warning("motion estimation failed (%s); the stream is processed without it", exc)
        remove_path(folder)
        return {"motion_error": f"{type(exc).__name__}: {exc}"}
    return _motion_facts(motion)


def run(ctx: StepContext, inputs: dict[str, Path], output: Path) -> dict[str, Any]:
    import spikeinterface as si
    import spikeinterface.preprocessing as spre

    p = ctx.config.preprocessing
    job = json.loads(inputs["job"].read_text())
    recording = raw_recording = si.load(job["recording"])
    applied = []

    # 1. integer format and ADC phase
    if recording.get_dtype().kind == "u":
        recording = spre.unsigned_to_signed(recording)
        applied.append("unsigned_to_signed")
    if "inter_sample_shift" in recording.get_property_keys():
        recording = spre.phase_shift(recording, **p.phase_shift)
        applied.append("phase_shift")
    # 2. temporal filter
    if p.filter_type == "highpass":
        recording = spre.highpass_filter(recording, **p.highpass_filter)
    else:
        recording = spre.bandpass_filter(recording, **p.bandpass_filter)
    applied.append(f"{p.filter_type}_filter")

    # 3. bad channels
    detect_kwargs = dict(p.detect_bad_channels)
    # the detector reads its random chunks (100 x 0.3 s by default) through the whole filter chain: in parallel
    detect_kwargs.setdefault("job_kwargs", dict(ctx.job_kwargs))
    labels = channel_labels(recording, raw_recording, detect_kwargs)
    counts = dict(Counter(labels.values()))
    num_channels = recording.get_num_channels()
    bad_ids = [c for c in recording.channel_ids if labels[str(c)] != "good"]
    logger.info("bad channels: %d of %d (%s)", len(bad_ids), num_channels, counts)
    facts: dict[str, Any] = {"num_channels_in": num_channels, "bad_channel_ids": [str(c) for c in bad_ids],
                             "channel_labels": labels}
    if len(bad_ids) / num_channels > p.max_bad_channel_fraction:
        raise StreamSkipped(
            f"{len(bad_ids)} of {num_channels} channels are bad ({len(bad_ids) / num_channels:.0%} > "
            f"max_bad_channel_fraction={p.max_bad_channel_fraction}); labels: {counts}",
            facts,
        )
    dead_or_noisy = [c for c in bad_ids if labels[str(c)] in DEAD_OR_NOISY]
    outside = [c for c in bad_ids if labels[str(c)] == "out"]
    if dead_or_noisy and p.interpolate_bad_channels:
        recording = spre.interpolate_bad_channels(recording, bad_channel_ids=dead_or_noisy)
        applied.append("interpolate_bad_channels")
    elif dead_or_noisy and p.remove_bad_channels:
        recording = recording.remove_channels(dead_or_noisy)
        applied.append("remove_bad_channels")
    if outside and p.remove_out_channels:
        recording = recording.remove_channels(outside)
        applied.append("remove_out_channels")

    # 4. denoising
    if p.denoising == "cmr":
        recording = spre.common_reference(recording, **p.common_reference)
        applied.append("common_reference")
    else:
        destripe_kwargs = dict(p.highpass_spatial_filter)
        # SpikeInterface's default pad (60 channels) must stay below the channel count: cap it on small probes
        destripe_kwargs.setdefault("n_channel_pad", min(60, recording.get_num_channels() - 1))
        recording = spre.highpass_spatial_filter(recording, **destripe_kwargs)
        applied.append("highpass_spatial_filter")

    # 5. motion
    motion_folder = temporary_sibling(output, "motion")
    remove_path(motion_folder)
    try:
        if p.motion == "apply":
            recording, motion = spre.correct_motion(recording, preset=p.motion_preset, folder=motion_folder,
                                                    output_motion=True,
                                                    estimate_motion_kwargs=motion_kwargs(recording, p),
                                                    **ctx.job_kwargs)
            facts.update(_motion_facts(motion))
            applied.append("correct_motion")
        recording.save(folder=output, format="binary", **ctx.job_kwargs)
        if p.motion == "compute":
            saved = si.load(output)
            facts.update(_estimate_motion(saved, p, motion_folder, ctx.job_kwargs))
        if motion_folder.exists():
            shutil.move(str(motion_folder), str(output / MOTION_SUBFOLDER))
    finally:
        remove_path(motion_folder)
    return {**facts, "num_channels_out": recording.get_num_channels(), "applied": applied,
            "motion": p.motion, "motion_saved": (output / MOTION_SUBFOLDER).exists()}


STEP = Step(name="preprocess", inputs=("job",), params=params, run=run)
