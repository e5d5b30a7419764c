"""Every on-disk name spikeline writes, in one place.

Results follow the layout users of the AIND ephys pipeline know::

    RESULTS_DIR/
      processing.json                  every step of every stream: params, versions, times, status
      jobs/<stream>.json               one job per stream found by dispatch (a SpikeInterface recording recipe)
      preprocessed/<stream>/           preprocessed recording (SpikeInterface binary folder; motion/ inside it)
      spikesorted/<stream>/            sorter output as a SpikeInterface sorting folder (+ sorter/ with its logs)
      postprocessed/<stream>/          SortingAnalyzer (binary_folder)
      curated/<stream>/                curated sorting with labels as properties (+ unit_labels.csv, curation.json)
      curated_manual/<stream>/manual_curation.json     manual curation from ``spikeline view`` (curation format v2)
      curated_manual/<stream>/manual_curation_history/ every saved manual curation, numbered (undo goes back one)
      curated_manual/<stream>/manual/                  the manually curated sorting ("apply" in ``spikeline view``)
      curated_manual/<stream>/manual/nwb/<session>_<stream>_manual.nwb   its units in NWB (when the run wrote NWB)
      provenance/<stream>/<step>.json  step record, written last and atomically (what resume trusts)
      provenance/<stream>/<step>.log   the step's full log
      provenance/dispatch.json         what dispatch found, and what it could not use and why
      phy/<stream>/                    Phy folder (optional: export.phy.enabled or `spikeline export phy`)
      nwb/<group>/<session>_<group>.nwb  one NWB file per block and recording, all probes (group: block0_recording1)
      provenance/<group>/nwb.json      the NWB step's record (and nwb.log), like a stream's
      data_description.json            subject, session, modality, derived-data name (aind-data-schema spirit)
      cluster/<YYYYmmdd-HHMMSS>/       one folder per cluster submission, at the top of RESULTS_DIR: plan.json (the
                                       jobs), config.yaml, profile.yaml, snakemake.log, slurm_logs/, markers/

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
    "export_phy": "phy",
}

#: Output folder of each session-level step (one run per group of streams, after every stream is done).
SESSION_STEP_FOLDERS = {
    "nwb": "nwb",
}

DATA_DESCRIPTION_JSON = "data_description.json"

PROCESSING_JSON = "processing.json"
VISUALIZATION_OUTPUT_JSON = "visualization_output.json"
UNIT_LABELS_CSV = "unit_labels.csv"
CURATION_JSON = "curation.json"
MANUAL_CURATION_FOLDER = "curated_manual"
MANUAL_CURATION_JSON = "manual_curation.json"
MANUAL_CURATION_HISTORY_SUBFOLDER = "manual_curation_history"
MANUAL_SORTING_SUBFOLDER = "manual"
MANUAL_APPLY_RECORD_JSON = "spikeline_manual_curation.json"
MANUAL_NWB_SUBFOLDER = "nwb"
SORTER_SUBFOLDER = "sorter"
MOTION_SUBFOLDER = "motion"
LOCK_FILE = ".spikeline.lock"
CLUSTER_FOLDER = "cluster"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXPORT_GROUP = re.compile(r"^(?P<block>block\d+)_.+_(?P<recording>recording\d+)(_group\d+)?$")


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
    @property
    def data_description_json(self) -> Path:
        return self.root / DATA_DESCRIPTION_JSON

    def session_step_output(self, step: str, group: str) -> Path:
        return self.root / SESSION_STEP_FOLDERS[step] / group

    def nwb_file(self, session: str, group: str, backend: str = "hdf5") -> Path:
        """The NWB file of one group: ``nwb/<group>/<session>_<group>.nwb`` (``.nwb.zarr`` for zarr)."""
        suffix = ".nwb.zarr" if backend == "zarr" else ".nwb"
        return self.session_step_output("nwb", group) / f"{safe_name(session)}_{group}{suffix}"

    def manual_curation_folder(self, stream: str) -> Path:
        """Beside ``curated/``, not inside it: a rerun of the curate step replaces ``curated/<stream>/`` whole,
        and must never take a person's curation with it."""
        return self.root / MANUAL_CURATION_FOLDER / stream

    def manual_curation_json(self, stream: str) -> Path:
        return self.manual_curation_folder(stream) / MANUAL_CURATION_JSON

    def manual_curation_history(self, stream: str) -> Path:
        return self.manual_curation_folder(stream) / MANUAL_CURATION_HISTORY_SUBFOLDER

    def manual_sorting(self, stream: str) -> Path:
        return self.manual_curation_folder(stream) / MANUAL_SORTING_SUBFOLDER

    def motion_folder(self, stream: str) -> Path:
        return self.step_output("preprocess", stream) / MOTION_SUBFOLDER

    def streams(self) -> list[str]:
        """Streams that dispatch wrote a job for, sorted by name."""
        return sorted(p.stem for p in self.jobs_dir.glob("*.json"))


def export_group(stream: str) -> str:
    """The NWB group of a stream: its block and recording (``block0_imec0.ap_recording1`` -> ``block0_recording1``).

    All probes of one block and recording share a clock, so they go into one NWB file (as the AIND pipeline does).
    """
    match = _EXPORT_GROUP.match(stream)
    return f"{match['block']}_{match['recording']}" if match else stream


def cluster_dir(results_dir: Path) -> Path:
    """Where cluster submissions keep their job graph and logs: ``RESULTS_DIR/cluster/`` (top level only)."""
    return Path(results_dir).absolute() / CLUSTER_FOLDER


def temporary_sibling(path: Path, tag: str = "tmp") -> Path:
    """A hidden path beside ``path`` (same folder, so relative paths stay valid after a rename)."""
    return path.parent / f".{path.name}.{tag}"
