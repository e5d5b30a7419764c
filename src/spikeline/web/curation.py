"""Manual curation of one stream: SpikeInterface curation format v2 on disk, with history, undo and apply.

Files (names in :mod:`spikeline.layout`), all under ``curated/<stream>/``:

* ``manual_curation.json``: the current manual curation, valid for ``spikeinterface.curation.Curation``;
* ``manual_curation_history/NNNNNN.json``: every saved state in order, each with ``NNNNNN.info.json`` beside it
  (who saved it, when, and what the change was); undo drops the newest and restores the one before it (or the
  empty curation);
* ``manual/``: the manually curated sorting (numpy folder) that "apply" writes, atomically, with the NWB file of
  those units in ``manual/nwb/`` when the run exported NWB.

These are the only files the web app writes.
"""

from __future__ import annotations

import getpass
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from ..layout import MANUAL_APPLY_RECORD_JSON, MANUAL_NWB_SUBFOLDER, temporary_sibling
from ..provenance import atomic_write_json, now_iso
from .data import StreamData, WebError

#: Label set offered for unit types (one per unit) and the starting free tags (any number per unit).
QUALITY_LABEL = "quality"
QUALITY_OPTIONS = ["SUA", "MUA", "noise"]
TAGS_LABEL = "tags"
DEFAULT_TAGS = ["needs_review", "drifting"]
#: Largest curation document accepted, in bytes.
MAX_CURATION_BYTES = 2_000_000
#: Suffix of the file beside each history state that says who saved it and when.
HISTORY_INFO_SUFFIX = ".info.json"
#: Longest curator name kept.
MAX_CURATOR_CHARS = 100


def default_curator() -> str:
    """The operating-system user running the server (``spikeline view --curator`` overrides it)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


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


def validate(document: Any, unit_ids: list, num_spikes: dict | None = None) -> dict[str, Any]:
    """Check a manual curation against SpikeInterface's model and this stream's units.

    Parameters
    ----------
    document : Any
        Decoded JSON sent by the browser.
    unit_ids : list
        The stream's unit ids (as curation files store them).
    num_spikes : dict | None
        Spikes per unit (text id -> count), to check split indices; not checked when None.

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
        _check_splits(document, num_spikes)  # first: SpikeInterface's own message would quote the whole document
    except (KeyError, TypeError, AttributeError):
        pass  # malformed splits: the model below says what is wrong
    try:
        Curation(**document)
    except (ValidationError, ValueError, TypeError) as exc:
        text = str(exc)
        raise WebError(400, f"invalid curation: {text if len(text) <= 1000 else text[:1000] + ' ...'}") from None
    definitions = document.get("label_definitions") or {}
    for item in document.get("manual_labels") or []:
        for name, values in (item.get("labels") or {}).items():
            options = definitions[name]["label_options"]
            unknown = [v for v in values if v not in options]
            if unknown:
                raise WebError(400, f"unit {item['unit_id']}: {unknown} not among the options of {name!r}")
    return document


def _check_splits(document: dict, num_spikes: dict | None) -> None:
    """Splits must name a unit that is neither removed nor merged, once, with spike indices inside its train."""
    taken = {str(u) for u in document.get("removed") or []}
    taken |= {str(u) for merge in document.get("merges") or [] for u in merge.get("unit_ids", [])}
    seen = set()
    for split in document.get("splits") or []:
        unit = str(split["unit_id"])
        if unit in taken:
            raise WebError(400, f"unit {unit} is split and also removed or merged: undo one of them first")
        if unit in seen:
            raise WebError(400, f"unit {unit} is split twice")
        seen.add(unit)
        if num_spikes is None:
            continue
        count = num_spikes[unit]
        if split.get("mode", "indices") == "labels":
            if len(split.get("labels") or []) != count:
                raise WebError(400, f"split of unit {unit}: {len(split['labels'])} labels for {count} spikes")
        else:
            groups = split.get("indices") or []
            if any(i < 0 or i >= count for group in groups for i in group):
                raise WebError(400, f"split of unit {unit}: spike indices must be in [0, {count})")
            if sum(len(group) for group in groups) in (0, count) and len(groups) == 1:
                raise WebError(400, f"split of unit {unit}: both parts must have spikes")


class ManualCuration:
    """The manual curation files of one stream.

    Parameters
    ----------
    stream : StreamData
        The loaded stream (its layout gives the file names, its curated sorting the unit ids).
    curator : str | None
        Who makes the changes (recorded with each saved state and each apply); default: the OS user.
    """

    def __init__(self, stream: StreamData, curator: str | None = None):
        self.stream = stream
        self.curator = (curator or default_curator())[:MAX_CURATOR_CHARS]
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
        history = self._history()
        infos = []
        for path in history:
            info = _read_info(path)
            infos.append({"number": int(path.stem), "curator": info.get("curator"), "saved_at": info.get("saved_at"),
                          "change": info.get("change")})
        return {"curation": document, "num_history_states": len(history), "applied": applied,
                "saved": self.path.is_file(), "curator": self.curator, "history": infos}

    def _num_spikes(self) -> dict[str, int]:
        counts = self.stream.sorting.count_num_spikes_per_unit()
        return {str(u): int(n) for u, n in counts.items()}

    def save(self, document: Any, change: str | None = None) -> dict[str, Any]:
        """Validate and save a new state (history first, then the current file; all atomically).

        Parameters
        ----------
        document : Any
            The new curation.
        change : str | None
            What changed, in a few words (kept in the history beside who saved it and when).
        """
        validate(document, self.stream.plain_unit_ids(), self._num_spikes())
        with self._lock:
            history = self._history()
            number = int(history[-1].stem) + 1 if history else 1
            self.history_dir.mkdir(parents=True, exist_ok=True)
            state = self.history_dir / f"{number:06d}.json"
            atomic_write_json(_info_path(state), {"curator": self.curator, "saved_at": now_iso(),
                                                  "change": (change or "")[:200] or None})
            atomic_write_json(state, document)
            atomic_write_json(self.path, document)
            return self._state()

    def split_at(self, unit_text: str, at_s: float) -> dict[str, Any]:
        """Save a new state where ``unit`` is split in two: its spikes before ``at_s`` and the others.

        Raises
        ------
        WebError
            404 for an unknown unit; 400 when one part would be empty or the unit is removed, merged or split.
        """
        unit = self.stream.unit_id(unit_text)
        train = self.stream.sorting.get_unit_spike_train(unit, segment_index=0)
        first = int((train < at_s * self.stream.sampling_frequency).sum())
        if first in (0, len(train)):
            raise WebError(400, f"unit {unit_text}: no spike on one side of {at_s:g} s; nothing to split")
        document = json.loads(json.dumps(self.state()["curation"]))
        document.setdefault("splits", []).append({"unit_id": document["unit_ids"][self.stream.unit_ids.index(unit)],
                                                  "mode": "indices", "indices": [list(range(first))]})
        return self.save(document, change=f"split unit {unit_text} at {at_s:g} s ({first} + {len(train) - first} "
                                          "spikes)")

    def undo(self) -> dict[str, Any]:
        """Go back one saved state; 409 when there is nothing to undo."""
        with self._lock:
            history = self._history()
            if not history:
                raise WebError(409, "nothing to undo")
            history[-1].unlink()
            _info_path(history[-1]).unlink(missing_ok=True)
            if len(history) > 1:
                atomic_write_json(self.path, json.loads(history[-2].read_text()))
            elif self.path.exists():
                self.path.unlink()
            return self._state()

    def apply(self) -> dict[str, Any]:
        """Write the manually curated sorting to ``manual/`` (temp folder, then rename).

        Only the sorting is rebuilt (labels, removals, merges and splits are cheap on spike trains); the analyzer,
        waveforms and metrics are left as they are. When the run exported NWB, the NWB file of the curated units
        goes into ``manual/nwb/`` (see :mod:`spikeline.web.apply_nwb`).

        Returns
        -------
        dict
            The apply record (also written inside the output folder).
        """
        import spikeinterface as si
        from spikeinterface.curation import apply_curation

        from .apply_nwb import nwb_settings, write_manual_nwb

        with self._lock, self.stream.io_lock:  # io_lock: see StreamData
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
            curated = si.load(temporary)
            nwb = None
            settings = nwb_settings(self.stream.layout)
            if settings is not None:
                try:
                    nwb = write_manual_nwb(self.stream.layout, self.stream.stream, self.stream.analyzer_dir,
                                           sorting, curated, document, temporary / MANUAL_NWB_SUBFOLDER, settings)
                except Exception as exc:  # the sorting was not written either: the user must see why
                    shutil.rmtree(temporary, ignore_errors=True)
                    raise WebError(500, f"writing the NWB file of the curated units failed: "
                                        f"{type(exc).__name__}: {exc}") from exc
            record = {
                "source_sorting": self.stream.curated_dir.name,
                "curation": document,
                "num_units_in": int(sorting.get_num_units()),
                "num_units_out": int(curated.get_num_units()),
                "unit_ids_out": [str(u) for u in curated.unit_ids],
                "duration_s": round(time.perf_counter() - t0, 3),
                "written_at": now_iso(),
                "applied_by": self.curator,
                "nwb": nwb and {**nwb, "path": f"{MANUAL_NWB_SUBFOLDER}/{nwb['file']}"},
            }
            atomic_write_json(temporary / MANUAL_APPLY_RECORD_JSON, record)
            if self.output_dir.exists():
                self.output_dir.rename(old)
            temporary.rename(self.output_dir)
            if old.exists():
                shutil.rmtree(old)
            return record


def _info_path(state: Path) -> Path:
    return state.with_name(state.stem + HISTORY_INFO_SUFFIX)


def _read_info(state: Path) -> dict[str, Any]:
    try:
        info = json.loads(_info_path(state).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


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
