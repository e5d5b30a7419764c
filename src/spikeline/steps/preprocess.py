"""Preprocess: phase shift, highpass, bad-channel detection and removal, common median reference.

The result is saved as a SpikeInterface binary folder (``preprocessed/<stream>/``) that the sorter and the
analyzer read directly and users reload with ``spikeinterface.load``; the lazy recipe that produced it is
saved inside it (``provenance.json``). A stream with more bad channels than ``max_bad_channel_fraction`` is
skipped with its reason recorded.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import PipelineConfig
from .base import Step, StepContext, StreamSkipped

logger = logging.getLogger("spikeline")


def params(config: PipelineConfig) -> dict[str, Any]:
    return config.step_params("preprocessing")


def flat_channel_ids(recording, num_chunks: int = 20, chunk_size: int = 3000) -> list:
    """Channels whose samples are all identical in random chunks (disconnected or zeroed channels)."""
    from spikeinterface.core import get_random_data_chunks

    chunks = get_random_data_chunks(recording, num_chunks_per_segment=num_chunks, chunk_size=chunk_size, seed=0)
    return [c for c, std in zip(recording.channel_ids, chunks.std(axis=0)) if std == 0]


def run(ctx: StepContext, inputs: dict[str, Path], output: Path) -> dict[str, Any]:
    import spikeinterface as si
    import spikeinterface.preprocessing as spre

    p = ctx.config.preprocessing
    job = json.loads(inputs["job"].read_text())
    recording = si.load(job["recording"])
    applied = []

    if "inter_sample_shift" in recording.get_property_keys():
        recording = spre.phase_shift(recording, **p.phase_shift)
        applied.append("phase_shift")
    recording = spre.highpass_filter(recording, **p.highpass_filter)
    applied.append("highpass_filter")

    detect_kwargs = dict(p.detect_bad_channels)
    detect_kwargs.setdefault("job_kwargs", {"progress_bar": ctx.job_kwargs["progress_bar"]})
    bad_channel_ids, channel_labels = spre.detect_bad_channels(recording, **detect_kwargs)
    labels = {str(ch): str(label) for ch, label in zip(recording.channel_ids, channel_labels)}
    # a channel that is exactly flat gives NaN coherence, which the IBL detector labels good: call it dead
    flat_ids = flat_channel_ids(recording)
    for channel_id in flat_ids:
        labels[str(channel_id)] = "dead"
    bad_channel_ids = [c for c in recording.channel_ids if labels[str(c)] != "good"]
    num_channels = recording.get_num_channels()
    bad_fraction = len(bad_channel_ids) / num_channels
    logger.info("bad channels: %d of %d (%s)", len(bad_channel_ids), num_channels, dict(Counter(labels.values())))
    facts = {
        "num_channels_in": num_channels,
        "bad_channel_ids": [str(c) for c in bad_channel_ids],
        "channel_labels": labels,
    }
    if bad_fraction > p.max_bad_channel_fraction:
        raise StreamSkipped(
            f"{len(bad_channel_ids)} of {num_channels} channels are bad ({bad_fraction:.0%} > "
            f"max_bad_channel_fraction={p.max_bad_channel_fraction}); labels: {dict(Counter(labels.values()))}",
            facts,
        )
    if p.remove_bad_channels and len(bad_channel_ids):
        recording = recording.remove_channels(bad_channel_ids)
        applied.append("remove_bad_channels")

    recording = spre.common_reference(recording, **p.common_reference)
    applied.append("common_reference")

    recording.save(folder=output, format="binary", **ctx.job_kwargs)
    return {**facts, "num_channels_out": recording.get_num_channels(), "applied": applied}


STEP = Step(name="preprocess", inputs=("job",), params=params, run=run)
