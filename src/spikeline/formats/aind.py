"""AIND session folders: ``<session>/ecephys/ecephys_clipped`` (Open Ephys, clipped) and, when present,
``<session>/ecephys/ecephys_compressed/<experiment>_<stream>.zarr`` (the compressed traces).

The streams, blocks and probe geometry come from the clipped Open Ephys folder; when a compressed zarr exists for
a stream, its traces are read instead (as the AIND pipeline does), with the clipped stream's probe attached.
"""

from __future__ import annotations

from pathlib import Path

from . import OpenedSession, openephys

CLIPPED = Path("ecephys") / "ecephys_clipped"
COMPRESSED = Path("ecephys") / "ecephys_compressed"


def find_sessions(data_dir: Path) -> list[Path]:
    """Every folder under ``data_dir`` holding ``ecephys/ecephys_clipped`` or ``ecephys/ecephys_compressed``."""
    found = {p.parents[1] for p in data_dir.rglob("ecephys_clipped") if p.parent.name == "ecephys"}
    found |= {p.parents[1] for p in data_dir.rglob("ecephys_compressed") if p.parent.name == "ecephys"}
    return sorted(found)


def compressed_name(block_index: int, stream_name: str) -> str:
    """AIND's zarr name for a stream: ``experiment<N>_<Record Node ...#stream>.zarr``."""
    return f"experiment{block_index + 1}_{stream_name}.zarr"


def open_session(session_dir: Path) -> OpenedSession:
    """Open the streams of one AIND session (see the module docstring).

    Parameters
    ----------
    session_dir : Path
        The folder holding ``ecephys/``.

    Returns
    -------
    candidates, problems, not_sorted
        As for the other formats.
    """
    import spikeinterface as si

    clipped = session_dir / CLIPPED
    if not clipped.is_dir():
        return [], [{"path": str(session_dir), "error": (
            f"{session_dir} has {COMPRESSED} but no {CLIPPED}: the clipped Open Ephys folder holds the probe geometry "
            "and stream layout spikeline needs. Copy it from the session's raw data asset.")}], []
    candidates, problems, not_sorted = openephys.open_session(clipped)
    for candidate in candidates:
        zarr_path = session_dir / COMPRESSED / compressed_name(candidate.block_index, candidate.recording.stream_name)
        if not zarr_path.exists():
            continue
        try:
            traces = si.load(zarr_path)
            traces.set_probegroup(candidate.recording.get_probegroup())
        except Exception as exc:
            problems.append({"path": str(zarr_path), "error": f"cannot read compressed traces {zarr_path}: {exc}"})
            continue
        candidate.recording = traces
        candidate.files = [*candidate.files, zarr_path]
    return candidates, problems, not_sorted
