"""Vendor file formats: finding sessions, checking files before reading them, and writers for synthetic sessions.

Each format module offers ``find_sessions(data_dir) -> list[Path]`` and ``open_session(path) -> (candidates,
problems)``; dispatch fans the candidates out into jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spikeinterface.core import BaseRecording


@dataclass
class StreamCandidate:
    """One stream a format reader opened: what dispatch fans out into jobs.

    Attributes
    ----------
    stream_id : str
        Reader's stream id (``imec0.ap``, ``acquisition/ElectricalSeries`` ...).
    recording : BaseRecording
        All segments, probe attached.
    block_index : int
        Block (Open Ephys experiment); 0 for formats without blocks.
    files : list of Path
        Raw files the stream reads (fingerprinted in the job).
    probe_part_number : str | None
        Probe model, when the format says.
    """

    stream_id: str
    recording: "BaseRecording"
    block_index: int
    files: list[Path]
    probe_part_number: str | None = None


#: What ``open_session`` returns in every format module: the streams to fan out, the problems (unusable inputs,
#: each ``{"path", "error"}``) and what was left out on purpose (each ``{"path", "reason"}``).
OpenedSession = tuple[list[StreamCandidate], list[dict[str, str]], list[dict[str, str]]]
