"""Any recording SpikeInterface can read, described by a small input file (the custom ingestion layer).

A folder holding ``spikeline_input.yaml`` (or ``.yml`` / ``.json``) is one session::

    reader: read_intan                # any spikeinterface.extractors read_* function, or "load" for si.load
    reader_kwargs:                    # its arguments; relative paths are relative to this file
      file_path: recording.rhd
      stream_id: "0"
    probe: probe.json                 # probeinterface JSON; needed when the reader gives no geometry

The reader's name and arguments are checked before reading, and a missing probe is reported with what to add.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import yaml

from . import OpenedSession, StreamCandidate

INPUT_FILE_NAMES = ("spikeline_input.yaml", "spikeline_input.yml", "spikeline_input.json")
_PATH_KEYS = ("file_path", "folder_path", "file_paths", "dirname", "filename")


def find_sessions(data_dir: Path) -> list[Path]:
    """Every folder under ``data_dir`` (itself included) that holds a spikeline input file."""
    return sorted({p.parent for name in INPUT_FILE_NAMES for p in data_dir.rglob(name)})


def input_file(folder: Path) -> Path:
    """The input file of a session folder."""
    return next(folder / name for name in INPUT_FILE_NAMES if (folder / name).exists())


def _resolve_paths(kwargs: dict[str, Any], base: Path) -> dict[str, Any]:
    def resolve(value):
        return str((base / value).resolve()) if isinstance(value, str) and not Path(value).is_absolute() else value

    resolved = dict(kwargs)
    for key in _PATH_KEYS:
        if key in resolved:
            value = resolved[key]
            resolved[key] = [resolve(v) for v in value] if isinstance(value, list) else resolve(value)
    return resolved


def _reader(name: str):
    import spikeinterface as si
    import spikeinterface.extractors as se

    if name == "load":
        return si.load
    func = getattr(se, name, None)
    if not name.startswith("read_") or func is None:
        valid = sorted(n for n in dir(se) if n.startswith("read_"))
        raise ValueError(f"unknown reader '{name}'; valid readers are 'load' and: {valid}")
    return func


def open_session(folder: Path) -> OpenedSession:
    """Read the recording a session folder's input file describes.

    Parameters
    ----------
    folder : Path
        A folder holding ``spikeline_input.yaml`` / ``.yml`` / ``.json``.

    Returns
    -------
    candidates, problems, not_sorted
        As for the other formats; at most one candidate.
    """
    import probeinterface

    path = input_file(folder)
    try:
        spec = yaml.safe_load(path.read_text()) or {}
        unknown = sorted(set(spec) - {"reader", "reader_kwargs", "probe"})
        if unknown or "reader" not in spec:
            raise ValueError(f"keys must be 'reader' (required), 'reader_kwargs', 'probe'; got {sorted(spec)}")
        reader = _reader(spec["reader"])
        kwargs = _resolve_paths(spec.get("reader_kwargs") or {}, path.parent)
        accepted = inspect.signature(reader).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
            bad = sorted(set(kwargs) - set(accepted))
            if bad:
                raise ValueError(f"unknown argument(s) {bad} for {spec['reader']}; valid: {sorted(accepted)}")
        recording = reader(**kwargs)
        if spec.get("probe"):
            probe_path = (path.parent / spec["probe"]).resolve()
            recording = recording.set_probegroup(probeinterface.read_probeinterface(probe_path)) or recording
    except Exception as exc:
        return [], [{"path": str(path), "error": f"cannot read the recording described by {path}: {exc}"}], []
    if not recording.has_scaleable_traces():
        return [], [{"path": str(path), "error": (
            f"{path}: the {spec['reader']} reader gives no gain to microvolts, and preprocessing thresholds are in "
            "microvolts. Add the gain to reader_kwargs (for read_binary: gain_to_uV and offset_to_uV).")}], []
    if not recording.has_probe():
        return [], [{"path": str(path), "error": (
            f"{path}: the {spec['reader']} reader gives no probe geometry. Add 'probe: probe.json' (a probeinterface "
            "JSON file, e.g. written with probeinterface.write_probeinterface) to the input file.")}], []
    files = [Path(v) for k in _PATH_KEYS for v in ([kwargs[k]] if isinstance(kwargs.get(k), str) else kwargs.get(k) or [])]
    return [StreamCandidate(stream_id=spec["reader"].removeprefix("read_"), recording=recording, block_index=0,
                            files=[path, *[f for f in files if f.is_file()]])], [], []
