"""Step records: what ran, with which parameters and inputs, on what software, how long, and how it ended.

A step's record (``provenance/<stream>/<step>.json``) is written last, atomically. A step counts as done only
when its record says ``ok`` (or ``skipped``, for a stream skipped on purpose) and its ``key`` equals the key
computed now from its resolved parameters and the keys of its inputs. That is what resume relies on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import socket
import sys
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

from .layout import PROCESSING_JSON, SESSION_STEP_FOLDERS, ResultsLayout, STEP_FOLDERS

STATUS_OK = "ok"
STATUS_SKIPPED = "skipped"  # the stream was skipped on purpose (e.g. too many bad channels): a final state
STATUS_FAILED = "failed"
STATUS_RUNNING = "running"
DONE_STATUSES = (STATUS_OK, STATUS_SKIPPED)

BASE_PACKAGES = ("spikeline", "spikeinterface", "probeinterface", "neo", "numpy", "scipy")


def now_iso() -> str:
    """The current time, ISO 8601 with time zone."""
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def stable_hash(obj: Any) -> str:
    """Short SHA-256 of the canonical JSON of ``obj`` (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def file_fingerprint(path: Path, hash_max_bytes: int = 1 << 20) -> dict[str, Any]:
    """Identify a raw file or folder cheaply: path, size and mtime; plus SHA-256 for small files (``.meta``)."""
    stat = path.stat()
    if path.is_dir():  # a zarr store: total size and newest modification inside
        files = [p.stat() for p in path.rglob("*") if p.is_file()]
        return {"path": str(path), "size_bytes": sum(f.st_size for f in files),
                "mtime_ns": max((f.st_mtime_ns for f in files), default=stat.st_mtime_ns)}
    info: dict[str, Any] = {"path": str(path), "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if stat.st_size <= hash_max_bytes:
        info["sha256"] = file_sha256(path)
    return info


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the packages that shape results, plus Python's."""
    versions = {"python": platform.python_version()}
    for name in BASE_PACKAGES + tuple(extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine_info() -> dict[str, Any]:
    import psutil

    return {
        "host": socket.gethostname(),
        "os": platform.platform(),
        "cpu_cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


def peak_rss_gib() -> float:
    """Peak resident memory of this process and its finished children, in GiB."""
    import resource

    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(self_kib, children_kib) / 2**20, 3)


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk, an interrupt: never leave the half-written file behind
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    """JSON content of ``path``, or None if it is missing or unreadable (a torn write counts as missing)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def replace_dir(tmp: Path, final: Path) -> None:
    """Put the finished folder ``tmp`` in place of ``final`` (removing an older ``final``)."""
    if final.exists():
        trash = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def build_processing_json(layout: ResultsLayout, config_dump: dict[str, Any] | None = None) -> dict[str, Any]:
    """Collect every step record under ``layout`` into one processing description.

    Parameters
    ----------
    layout : ResultsLayout
        The results folder.
    config_dump : dict | None
        The resolved configuration of the run, recorded as is.

    Returns
    -------
    dict
        ``{"pipeline": ..., "config": ..., "dispatch": ..., "data_processes": [...]}``, one data process per
        stream and step, in pipeline order.
    """
    from . import __version__

    processes = []
    for stream in layout.streams():
        for step in STEP_FOLDERS:
            record = read_json(layout.step_record(step, stream))
            if record is not None:
                processes.append(record)
    for step in SESSION_STEP_FOLDERS:
        for record_path in sorted(layout.provenance_dir.glob(f"*/{step}.json")):
            record = read_json(record_path)
            if record is not None:
                processes.append(record)
    processes = [{**record, "pipeline_name": PIPELINE_NAME} for record in processes]
    dispatch = read_json(layout.dispatch_record)
    document = {
        "describedBy": SCHEMA_URL.format(name="processing"),
        "schema_version": SCHEMA_VERSION,
        "pipeline": {"name": "spikeline", "version": __version__},
        "generated": now_iso(),
        "config": config_dump,
        "dispatch": dispatch,
        "data_processes": processes,
    }
    upstream = _input_document(dispatch, PROCESSING_JSON)
    if upstream is not None:  # extend the input's own processing history: its processes first, then ours
        earlier = upstream.get("data_processes") if isinstance(upstream.get("data_processes"), list) else []
        document = {**upstream, **document, "data_processes": [*earlier, *processes],
                    "input_processing": {k: v for k, v in upstream.items() if k != "data_processes"}}
    return document


def write_processing_json(layout: ResultsLayout, config_dump: dict[str, Any] | None = None) -> Path:
    """Write ``processing.json`` atomically and return its path."""
    atomic_write_json(layout.processing_json, build_processing_json(layout, config_dump))
    return layout.processing_json


def write_visualization_output(layout: ResultsLayout) -> Path:
    """``visualization_output.json``: every stream's figures, as paths relative to the results folder."""
    figures = {}
    for stream in layout.streams():
        record = read_json(layout.step_record("visualize", stream))
        if record and record.get("status") == STATUS_OK:
            folder = layout.step_output("visualize", stream).relative_to(layout.root)
            figures[stream] = {name: str(folder / file) for name, file in record["outputs"]["figures"].items()}
    atomic_write_json(layout.visualization_output_json, figures)
    return layout.visualization_output_json
PIPELINE_NAME = "spikeline"
SCHEMA_VERSION = "1.0.0"
SCHEMA_URL = "https://spikeline.invalid/schemas/{name}.schema.json (shipped as spikeline/schemas/{name}.schema.json)"


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema spikeline ships for ``processing`` or ``data_description``."""
    return json.loads((Path(__file__).parent / "schemas" / f"{name}.schema.json").read_text())


def _input_document(dispatch: dict | None, file_name: str) -> dict | None:
    """A JSON document of the same name in the input data folder, if it has one (read, never written)."""
    if not dispatch or not dispatch.get("data_dir"):
        return None
    document = read_json(Path(dispatch["data_dir"]) / file_name)
    return document if isinstance(document, dict) else None


def build_data_description(layout: ResultsLayout, metadata=None) -> dict[str, Any]:
    """``data_description.json`` of the results: a derived-data description in the spirit of aind-data-schema.

    Parameters
    ----------
    layout : ResultsLayout
        The results folder.
    metadata : spikeline.metadata.SessionMetadata | None
        Subject and session metadata from the user's file.

    Returns
    -------
    dict
        When the input data folder has a ``data_description.json``, a copy of it updated as a derived record
        (``data_level`` derived, ``input_data_name``, ``process_name``), the original kept under
        ``input_data_description``.
    """
    from . import __version__

    dispatch = read_json(layout.dispatch_record) or {}
    input_name = Path(dispatch.get("data_dir", layout.root.name)).name
    created = dt.datetime.now(dt.timezone.utc).astimezone()
    subject = metadata.subject.model_dump(mode="json", exclude_none=True) if metadata else {}
    session = metadata.session.model_dump(mode="json", exclude_none=True) if metadata else {}
    upstream = _input_document(dispatch, "data_description.json")
    subject_id = subject.get("subject_id") or (upstream or {}).get("subject_id")
    document = {
        "describedBy": SCHEMA_URL.format(name="data_description"),
        "schema_version": SCHEMA_VERSION,
        "name": f"{input_name}_sorted_{created.strftime('%Y-%m-%d_%H-%M-%S')}",
        "input_data_name": input_name,
        "process_name": "sorted",
        "data_level": "derived",
        "creation_time": created.isoformat(timespec="seconds"),
        "modalities": ["ecephys"],
        "subject_id": subject_id,
        "subject": subject,
        "session": session,
        "institution": session.get("institution") or (upstream or {}).get("institution"),
        "investigators": session.get("experimenter") or (upstream or {}).get("investigators") or [],
        "pipeline": {"name": PIPELINE_NAME, "version": __version__},
        "streams": [s["stream"] for s in dispatch.get("streams", [])],
    }
    if upstream is not None:
        document = {**upstream, **document, "input_data_description": upstream}
    return document


def write_data_description(layout: ResultsLayout, metadata=None) -> Path:
    """Write ``data_description.json`` atomically and return its path."""
    atomic_write_json(layout.data_description_json, build_data_description(layout, metadata))
    return layout.data_description_json


def command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
