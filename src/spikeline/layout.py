"""Every on-disk name spikeline writes, in one place.

Results follow the layout users of the AIND ephys pipeline know::

    RESULTS_DIR/
      processing.json                  every step of every stream: params, versions, times, status
      jobs/<stream>.json               one job per stream found by dispatch (a SpikeInterface recording recipe)
      preprocessed/<stream>/           preprocessed recording (SpikeInterface binary folder; motion/ inside it)
      spikesorted/<stream>/            sorter output as a SpikeInterface sorting folder (+ sorter/ with its logs)
      postprocessed/<stream>/          SortingAnalyzer (binary_folder)
      curated/<stream>/                curated sorting with labels as properties (+ unit_labels.csv, curation.json)
      curated/<stream>/manual_curation.json          manual curation from ``spikeline view`` (curation format v2)
      curated/<stream>/manual_curation_history/      every saved manual curation, numbered (undo goes back one)
      curated/<stream>/manual/                       the manually curated sorting ("apply" in ``spikeline view``)
      provenance/<stream>/<step>.json  step record, written last and atomically (what resume trusts)
      provenance/<stream>/<step>.log   the step's full log
      provenance/dispatch.json         what dispatch found, and what it could not use and why

Stream names contain only letters, digits, ``.``, ``_`` and ``-``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: Output folder of each step, in pipeline order.
STEP_FOLDERS = {
    "preprocess": "preprocessed",
    "sort": "spikesorted",
    "postprocess": "postprocessed",
    "curate": "curated",
    "visualize": "visualization",
}

PROCESSING_JSON = "processing.json"
VISUALIZATION_OUTPUT_JSON = "visualization_output.json"
UNIT_LABELS_CSV = "unit_labels.csv"
CURATION_JSON = "curation.json"
MANUAL_CURATION_JSON = "manual_curation.json"
MANUAL_CURATION_HISTORY_SUBFOLDER = "manual_curation_history"
MANUAL_SORTING_SUBFOLDER = "manual"
MANUAL_APPLY_RECORD_JSON = "spikeline_manual_curation.json"
SORTER_SUBFOLDER = "sorter"
MOTION_SUBFOLDER = "motion"
LOCK_FILE = ".spikeline.lock"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """Make a file-system and shell friendly name: no spaces, ``#`` or path separators.

    Parameters
    ----------
    text : str
        Any label (stream id, folder name ...).

    Returns
    -------
    str
        ``text`` with each run of other characters replaced by ``_``; never empty, never ``.`` or ``..``.
    """
    name = _UNSAFE.sub("_", text).strip("_")
    if name in ("", ".", ".."):
        name = "unnamed"
    return name


def stream_name(block_index: int, stream_id: str, segment_index: int) -> str:
    """Name of one job: ``block{b}_{stream_id}_recording{s+1}``, as the AIND pipeline names them."""
    return safe_name(f"block{block_index}_{stream_id}_recording{segment_index + 1}")


@dataclass(frozen=True)
class ResultsLayout:
    """Paths under one results folder.

    Parameters
    ----------
    root : Path
        The results folder of one session.
    """

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).absolute())

    @property
    def processing_json(self) -> Path:
        return self.root / PROCESSING_JSON

    @property
    def visualization_output_json(self) -> Path:
        return self.root / VISUALIZATION_OUTPUT_JSON

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    def job_file(self, stream: str) -> Path:
        return self.jobs_dir / f"{stream}.json"

    def step_output(self, step: str, stream: str) -> Path:
        return self.root / STEP_FOLDERS[step] / stream

    @property
    def provenance_dir(self) -> Path:
        return self.root / "provenance"

    @property
    def dispatch_record(self) -> Path:
        return self.provenance_dir / "dispatch.json"

    def step_record(self, step: str, stream: str) -> Path:
        return self.provenance_dir / stream / f"{step}.json"

    def step_log(self, step: str, stream: str) -> Path:
        return self.provenance_dir / stream / f"{step}.log"

    def sorter_folder(self, stream: str) -> Path:
        return self.step_output("sort", stream) / SORTER_SUBFOLDER

    def unit_labels_csv(self, stream: str) -> Path:
        return self.step_output("curate", stream) / UNIT_LABELS_CSV

    def curation_json(self, stream: str) -> Path:
        return self.step_output("curate", stream) / CURATION_JSON

    def manual_curation_json(self, stream: str) -> Path:
        return self.step_output("curate", stream) / MANUAL_CURATION_JSON

    def manual_curation_history(self, stream: str) -> Path:
        return self.step_output("curate", stream) / MANUAL_CURATION_HISTORY_SUBFOLDER

    def manual_sorting(self, stream: str) -> Path:
        return self.step_output("curate", stream) / MANUAL_SORTING_SUBFOLDER

    def motion_folder(self, stream: str) -> Path:
        return self.step_output("preprocess", stream) / MOTION_SUBFOLDER

    def streams(self) -> list[str]:
        """Streams that dispatch wrote a job for, sorted by name."""
        return sorted(p.stem for p in self.jobs_dir.glob("*.json"))


def temporary_sibling(path: Path, tag: str = "tmp") -> Path:
    """A hidden path beside ``path`` (same folder, so relative paths stay valid after a rename)."""
    return path.parent / f".{path.name}.{tag}"
