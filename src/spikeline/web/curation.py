"""Manual curation of one stream: SpikeInterface curation format v2 on disk, with history, undo and apply.

Files (names in :mod:`spikeline.layout`), all under ``curated/<stream>/``:

* ``manual_curation.json``: the current manual curation, valid for ``spikeinterface.curation.Curation``;
* ``manual_curation_history/NNNNNN.json``: every saved state in order; undo drops the newest and restores
  the one before it (or the empty curation);
* ``manual/``: the manually curated sorting (numpy folder) that "apply" writes, atomically.

These are the only files the web app writes.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from ..layout import MANUAL_APPLY_RECORD_JSON, temporary_sibling
from ..provenance import atomic_write_json
from .data import StreamData, WebError

#: Label set offered for unit types (one per unit) and the starting free tags (any number per unit).
QUALITY_LABEL = "quality"
QUALITY_OPTIONS = ["SUA", "MUA", "noise"]
TAGS_LABEL = "tags"
DEFAULT_TAGS = ["needs_review", "drifting"]
#: Largest curation document accepted, in bytes.
MAX_CURATION_BYTES = 2_000_000


def empty_curation(unit_ids: list) -> dict[str, Any]:
    """A curation that changes nothing, with the label definitions the app offers.

    Parameters
    ----------
    unit_ids : list
        Every unit of the curated sorting (int or str, as curation files store them).

    Returns
    -------
    dict
        Curation format v2.
    """
    return {
        "format_version": "2",
        "unit_ids": list(unit_ids),
        "label_definitions": {
            QUALITY_LABEL: {"name": QUALITY_LABEL, "label_options": list(QUALITY_OPTIONS), "exclusive": True},
            TAGS_LABEL: {"name": TAGS_LABEL, "label_options": list(DEFAULT_TAGS), "exclusive": False},
        },
        "manual_labels": [],
        "removed": [],
        "merges": [],
        "splits": [],
    }


def validate(document: Any, unit_ids: list) -> dict[str, Any]:
    """Check a manual curation against SpikeInterface's model and this stream's units.

    Parameters
    ----------
    document : Any
        Decoded JSON sent by the browser.
    unit_ids : list
        The stream's unit ids (as curation files store them).

    Returns
    -------
    dict
        ``document``, unchanged, when it is valid.

    Raises
    ------
    WebError
        400 with SpikeInterface's message when it is not.
    """
    from pydantic import ValidationError
    from spikeinterface.curation.curation_model import Curation

    if not isinstance(document, dict):
        raise WebError(400, "a curation must be a JSON object")
    if str(document.get("format_version")) != "2":
        raise WebError(400, "format_version must be \"2\"")
    if [str(u) for u in document.get("unit_ids", [])] != [str(u) for u in unit_ids]:
        raise WebError(400, "unit_ids must be exactly the stream's curated units, in order")
    try:
        Curation(**document)
    except (ValidationError, ValueError, TypeError) as exc:
        raise WebError(400, f"invalid curation: {exc}") from None
    definitions = document.get("label_definitions") or {}
    for item in document.get("manual_labels") or []:
        for name, values in (item.get("labels") or {}).items():
            options = definitions[name]["label_options"]
            unknown = [v for v in values if v not in options]
            if unknown:
                raise WebError(400, f"unit {item['unit_id']}: {unknown} not among the options of {name!r}")
    if document.get("splits"):
        raise WebError(400, "splits are not supported by this app yet")
    return document


class ManualCuration:
    """The manual curation files of one stream.

    Parameters
    ----------
    stream : StreamData
        The loaded stream (its layout gives the file names, its curated sorting the unit ids).
    """

    def __init__(self, stream: StreamData):
        self.stream = stream
        self.path = stream.layout.manual_curation_json(stream.stream)
        self.history_dir = stream.layout.manual_curation_history(stream.stream)
        self.output_dir = stream.layout.manual_sorting(stream.stream)
        self._lock = threading.Lock()

    def _history(self) -> list[Path]:
        if not self.history_dir.is_dir():
            return []
        return sorted(p for p in self.history_dir.glob("*.json") if p.stem.isdigit())

    def state(self) -> dict[str, Any]:
        """The current curation, how many saved states the history holds, and the last apply."""
        with self._lock:
            return self._state()

    def _state(self) -> dict[str, Any]:
        document = None
        if self.path.is_file():
            try:
                document = json.loads(self.path.read_text())
            except ValueError:
                document = None
        if document is None:
            document = empty_curation(self.stream.plain_unit_ids())
        record = self.output_dir / MANUAL_APPLY_RECORD_JSON
        applied = json.loads(record.read_text()) if record.is_file() else None
        return {"curation": document, "num_history_states": len(self._history()), "applied": applied,
                "saved": self.path.is_file()}

    def save(self, document: Any) -> dict[str, Any]:
        """Validate and save a new state (history first, then the current file; both atomically)."""
        validate(document, self.stream.plain_unit_ids())
        with self._lock:
            history = self._history()
            number = int(history[-1].stem) + 1 if history else 1
            self.history_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.history_dir / f"{number:06d}.json", document)
            atomic_write_json(self.path, document)
            return self._state()

    def undo(self) -> dict[str, Any]:
        """Go back one saved state; 409 when there is nothing to undo."""
        with self._lock:
            history = self._history()
            if not history:
                raise WebError(409, "nothing to undo")
            history[-1].unlink()
            if len(history) > 1:
                atomic_write_json(self.path, json.loads(history[-2].read_text()))
            elif self.path.exists():
                self.path.unlink()
            return self._state()

    def apply(self) -> dict[str, Any]:
        """Write the manually curated sorting to ``manual/`` (temp folder, then rename).

        Only the sorting is rebuilt (labels, removals and merges are cheap on spike trains); the analyzer,
        waveforms and metrics are left as they are.

        Returns
        -------
        dict
            The apply record (also written inside the output folder).
        """
        import spikeinterface as si
        from spikeinterface.curation import apply_curation

        with self._lock:
            state = self._state()
            document = state["curation"]
            sorting = si.load(self.stream.curated_dir)
            t0 = time.perf_counter()
            try:
                curated = apply_curation(sorting, document, new_id_strategy="append")
            except Exception as exc:  # SpikeInterface refuses it: the user must see why
                raise WebError(400, f"apply_curation failed: {exc}") from None
            temporary = temporary_sibling(self.output_dir, "writing")
            old = temporary_sibling(self.output_dir, "old")
            for folder in (temporary, old):
                if folder.exists():
                    shutil.rmtree(folder)
            curated.save(folder=temporary, format="numpy_folder")
            _make_folder_relative(temporary)
            record = {
                "source_sorting": self.stream.curated_dir.name,
                "curation": document,
                "num_units_in": int(sorting.get_num_units()),
                "num_units_out": int(curated.get_num_units()),
                "unit_ids_out": [str(u) for u in curated.unit_ids],
                "duration_s": round(time.perf_counter() - t0, 3),
                "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "nwb": None,
            }
            atomic_write_json(temporary / MANUAL_APPLY_RECORD_JSON, record)
            if self.output_dir.exists():
                self.output_dir.rename(old)
            temporary.rename(self.output_dir)
            if old.exists():
                shutil.rmtree(old)
            return record


def _make_folder_relative(folder: Path) -> None:
    """Point a saved sorting folder's ``si_folder.json`` at itself (``"."``), so it loads after a rename.

    A sorting derived from a folder sorting saves the absolute path of the folder it was written to; the
    temporary folder then disappears in the rename.
    """
    record_path = folder / "si_folder.json"
    record = json.loads(record_path.read_text())
    if "folder_path" in record.get("kwargs", {}):
        record["kwargs"]["folder_path"] = "."
        record["relative_paths"] = True
        atomic_write_json(record_path, record)
