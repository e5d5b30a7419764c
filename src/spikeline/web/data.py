"""Read-only access to a results tree for the web app: sessions, streams, units, plots' data.

Everything here reads; nothing writes (manual curation lives in :mod:`spikeline.web.curation`). Each
:class:`StreamData` loads the curated sorting and the SortingAnalyzer once and keeps what views ask for in a
per-stream cache owned by the :class:`ResultsIndex` of one server.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..layout import PROCESSING_JSON, ResultsLayout

#: Most points sent for one unit's amplitudes over time, and for the drift map.
MAX_AMPLITUDE_POINTS = 3000
MAX_DRIFT_POINTS = 30000
#: Waveforms sent per unit, and channels shown around the peak channel.
NUM_WAVEFORMS_SHOWN = 25
NUM_NEARBY_CHANNELS = 12
#: Longest trace window, and most samples per channel sent for it (stride decimation beyond).
MAX_TRACE_WINDOW_S = 10.0
MAX_TRACE_SAMPLES = 4000
#: Bin edges of the ISI histogram drawn when the analyzer has no ``isi_histograms`` extension.
ISI_BINS_MS = np.arange(0.0, 100.5, 1.0)
#: Most trace values (channels x samples) sent for one window.
MAX_TRACE_VALUES = 400_000
#: Deepest folder level searched for sessions under RESULTS_DIR.
MAX_SESSION_DEPTH = 4
#: Unit-view payloads kept per stream.
UNIT_CACHE_SIZE = 512


class WebError(Exception):
    """A request the app refuses: becomes an HTTP status with a JSON ``{"error": message}``.

    Parameters
    ----------
    status : int
        HTTP status code (4xx).
    message : str
        What was wrong, for the user.
    """

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def floats(values, decimals: int = 3) -> list:
    """A float array as a JSON-able list, rounded, with NaN and infinities as ``None``."""
    array = np.round(np.asarray(values, dtype=float), decimals)
    out = array.tolist()
    if not np.isfinite(array).all():
        def fix(v):
            if isinstance(v, list):
                return [fix(x) for x in v]
            return None if (v is None or not math.isfinite(v)) else v
        out = fix(out)
    return out


def plain(value: Any) -> Any:
    """A numpy scalar (or anything else) as a plain JSON value; NaN becomes ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _read_json(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def find_sessions(root: Path) -> dict[str, Path]:
    """Session folders (those holding ``processing.json``) under ``root``.

    Parameters
    ----------
    root : Path
        RESULTS_DIR, resolved.

    Returns
    -------
    dict of str to Path
        Session id (the folder relative to ``root`` in POSIX form, ``"."`` for ``root`` itself) to folder.
    """
    if (root / PROCESSING_JSON).is_file():
        return {".": root}
    sessions: dict[str, Path] = {}
    level = [root]
    for _ in range(MAX_SESSION_DEPTH):
        next_level = []
        for folder in level:
            for child in sorted(folder.iterdir()):
                if child.name.startswith(".") or not child.is_dir() or child.is_symlink():
                    continue
                if (child / PROCESSING_JSON).is_file():
                    sessions[child.relative_to(root).as_posix()] = child
                else:
                    next_level.append(child)
        level = next_level
    return sessions


def _stream_summaries(session_dir: Path) -> list[dict]:
    """Per stream of one session: step statuses, durations, probe, unit counts, reasons."""
    processing = _read_json(session_dir / PROCESSING_JSON) or {}
    layout = ResultsLayout(session_dir)
    dispatch = _read_json(layout.dispatch_record) or {}
    probes = {}
    for item in dispatch.get("streams", []) if isinstance(dispatch, dict) else []:
        if isinstance(item, dict) and "stream" in item:
            probes[item["stream"]] = item
    streams: dict[str, dict] = {}
    for name in layout.streams():
        streams[name] = {"stream": name, "steps": [], "status": "ok", "reason": None}
    for record in processing.get("data_processes", []):
        name = record.get("stream")
        if name not in streams:  # session-level steps (NWB per block and recording) are not streams
            continue
        entry = streams[name]
        status = record.get("status", "ok")
        entry["steps"].append({"name": record.get("name"), "status": status,
                               "duration_s": record.get("duration_s"),
                               "reason": record.get("reason") or record.get("error")})
        if status != "ok" and entry["status"] == "ok":
            entry["status"] = status
            entry["reason"] = f"{record.get('name')}: {record.get('reason') or record.get('error') or status}"
        outputs = record.get("outputs") or {}
        if record.get("name") == "curate" and status == "ok":
            entry["num_units"] = outputs.get("num_units")
            entry["num_units_passing_qc"] = outputs.get("num_units_passing_qc")
            entry["num_units_per_type"] = outputs.get("num_units_per_decoder_label") or {}
    for name, entry in streams.items():
        info = probes.get(name, {})
        entry["probe"] = info.get("probe_part_number")
        entry["num_channels"] = info.get("num_channels")
        entry["duration_s"] = info.get("duration_s")
        entry["viewable"] = (layout.step_output("curate", name) / "spikes.npy").exists() or \
            layout.step_output("curate", name).is_dir() and layout.step_output("postprocess", name).is_dir()
        entry["total_duration_s"] = round(sum(s["duration_s"] or 0.0 for s in entry["steps"]), 2)
    problems = dispatch.get("problems", []) if isinstance(dispatch, dict) else []
    return [streams[k] for k in sorted(streams)], problems


@dataclass
class _SpikeTable:
    """Every spike of the analyzer's sorting, grouped by unit."""

    sample_index: np.ndarray
    unit_index: np.ndarray
    order: np.ndarray  # spike indices sorted by unit
    bounds: np.ndarray  # order[bounds[i]:bounds[i+1]] are the spikes of unit i

    def of_unit(self, unit_index: int) -> np.ndarray:
        return self.order[self.bounds[unit_index]:self.bounds[unit_index + 1]]


class StreamData:
    """One stream's results, loaded lazily and cached.

    Parameters
    ----------
    session_dir : Path
        The session folder.
    stream : str
        Stream name (a job of that session).
    io_lock : threading.RLock | None
        Held around every read of SpikeInterface/numpy files (shared by all streams of a server). On
        Python 3.11 two threads parsing ``.npy`` headers at once can fail with "SystemError: AST constructor
        recursion depth mismatch" (CPython gh-106905: the AST recursion counter is shared between threads),
        so the server's threads must not load files concurrently. Default: a lock of this stream only.
    """

    def __init__(self, session_dir: Path, stream: str, io_lock: threading.RLock | None = None):
        import spikeinterface as si

        self.io_lock = io_lock if io_lock is not None else threading.RLock()
        self.layout = ResultsLayout(session_dir)
        self.stream = stream
        self.curated_dir = self.layout.step_output("curate", stream)
        self.analyzer_dir = self.layout.step_output("postprocess", stream)
        if not self.curated_dir.is_dir() or not self.analyzer_dir.is_dir():
            raise WebError(404, f"stream {stream!r} has no curated units (its curate or postprocess step did not run)")
        with self.io_lock:
            self.sorting = si.load(self.curated_dir)
            self.analyzer = si.load_sorting_analyzer(self.analyzer_dir, load_extensions=False)
        self.unit_ids = list(self.sorting.unit_ids)
        self._by_text = {str(u): u for u in self.unit_ids}
        analyzer_ids = list(self.analyzer.unit_ids)
        self._analyzer_index = {str(u): i for i, u in enumerate(analyzer_ids)}
        self.sampling_frequency = float(self.analyzer.sampling_frequency)
        self.channel_locations = np.asarray(self.analyzer.get_channel_locations(), dtype=float)
        self._lock = threading.RLock()
        self._units: dict[str, dict] = {}
        self._unit_json: dict[str, bytes] = {}
        self._cached: dict[str, Any] = {}

    # ------------------------------------------------------------------ helpers
    def unit_id(self, text: str):
        """The unit id whose text form is ``text``; 404 for an unknown one."""
        if text not in self._by_text:
            raise WebError(404, f"unknown unit id {text!r} in stream {self.stream!r}")
        return self._by_text[text]

    def plain_unit_ids(self) -> list:
        """Unit ids as JSON values (int or str), as curation files store them."""
        return [plain(u) for u in self.unit_ids]

    def _extension(self, name: str):
        with self._lock, self.io_lock:
            return self.analyzer.get_extension(name)

    def _memo(self, key: str, compute):
        with self._lock:
            if key not in self._cached:
                self._cached[key] = compute()
            return self._cached[key]

    def thresholds(self) -> dict[str, dict]:
        """``default_qc`` thresholds from processing.json (``{metric: {"less"|"greater": value}}``)."""
        def read():
            processing = _read_json(self.layout.processing_json) or {}
            config = processing.get("config") or {}
            return (config.get("curation") or {}).get("default_qc") or {}
        return self._memo("thresholds", read)

    def spikes(self) -> _SpikeTable:
        """The analyzer's spike vector grouped by unit (cached)."""
        def build():
            vector = self.analyzer.sorting.to_spike_vector()
            unit_index = vector["unit_index"]
            order = np.argsort(unit_index, kind="stable")
            bounds = np.searchsorted(unit_index[order], np.arange(len(self._analyzer_index) + 1))
            return _SpikeTable(vector["sample_index"], unit_index, order, bounds)
        return self._memo("spikes", build)

    # ------------------------------------------------------------------ views
    def info(self) -> dict:
        """Stream facts every view needs: unit ids, probe geometry, duration, which extensions exist."""
        def build():
            num_samples = self.analyzer.get_total_samples()
            return {
                "stream": self.stream,
                "unit_ids": [str(u) for u in self.unit_ids],
                "sampling_frequency_hz": self.sampling_frequency,
                "duration_s": num_samples / self.sampling_frequency,
                "channel_ids": [str(c) for c in self.analyzer.channel_ids],
                "channel_locations_um": floats(self.channel_locations, 1),
                "extensions": sorted(self.analyzer.get_saved_extension_names()),
                "thresholds": self.thresholds(),
                "has_motion": self.layout.motion_folder(self.stream).is_dir(),
                "has_raw": self.layout.job_file(self.stream).is_file(),
            }
        return self._memo("info", build)

    def unit_table(self) -> dict:
        """Every curated unit with every property (labels, QC flags, metrics) as columns."""
        def build():
            columns, data = ["unit_id"], [[str(u) for u in self.unit_ids]]
            kinds = ["text"]
            keys = list(self.sorting.get_property_keys())
            first = ["default_qc", "decoder_label", "decoder_probability", "bombcell_label", "qc_fail_reasons"]
            keys = [k for k in first if k in keys] + sorted(k for k in keys if k not in first)
            for key in keys:
                values = self.sorting.get_property(key)
                if values is None or np.asarray(values).ndim != 1:
                    continue
                values = np.asarray(values)
                if values.dtype.kind == "b":
                    data.append([bool(v) for v in values])
                    kinds.append("bool")
                elif values.dtype.kind in "iuf":
                    data.append(floats(values, 4))
                    kinds.append("number")
                else:
                    data.append([str(v) for v in values])
                    kinds.append("text")
                columns.append(key)
            counts = self.analyzer.sorting.count_num_spikes_per_unit(outputs="dict")
            columns.append("num_spikes_analyzed")
            kinds.append("number")
            data.append([int(counts.get(u, 0)) for u in self.unit_ids])
            rows = [list(row) for row in zip(*data)]
            return {"columns": columns, "kinds": kinds, "rows": rows}
        return self._memo("unit_table", build)

    def unit(self, text: str) -> dict:
        """Everything the unit view draws for one unit (cached per unit)."""
        unit_id = self.unit_id(text)
        with self._lock:
            if text in self._units:
                return self._units[text]
        payload = self._build_unit(unit_id)
        with self._lock:
            if len(self._units) >= UNIT_CACHE_SIZE:
                self._units.pop(next(iter(self._units)))
            self._units[text] = payload
        return payload

    def unit_json(self, text: str) -> bytes:
        """:meth:`unit` encoded as JSON (cached: a unit view is a few hundred kB of numbers, and encoding it again
        for every request was most of the time a revisit took under load)."""
        with self._lock:
            if text in self._unit_json:
                return self._unit_json[text]
        encoded = json.dumps(self.unit(text), allow_nan=False, default=str).encode()
        with self._lock:
            if len(self._unit_json) >= UNIT_CACHE_SIZE:
                self._unit_json.pop(next(iter(self._unit_json)))
            self._unit_json[text] = encoded
        return encoded

    def _build_unit(self, unit_id) -> dict:
        index = self._analyzer_index.get(str(unit_id))
        properties = {key: plain(self.sorting.get_property(key)[self.unit_ids.index(unit_id)])
                      for key in self.sorting.get_property_keys()
                      if np.asarray(self.sorting.get_property(key)).ndim == 1}
        out: dict[str, Any] = {"unit_id": str(unit_id), "properties": properties, "qc": self._qc(properties)}
        if index is None:
            return out
        templates = self._extension("templates")
        channels = np.arange(len(self.channel_locations))
        if templates is not None:
            template = templates.get_unit_template(unit_id, operator="average")
            peak = int(np.argmax(np.abs(template).max(axis=0)))
            distances = np.linalg.norm(self.channel_locations - self.channel_locations[peak], axis=1)
            channels = np.sort(np.argsort(distances, kind="stable")[:NUM_NEARBY_CHANNELS])
            out.update(peak_channel=peak, channels=channels.tolist(),
                       time_ms=floats((np.arange(template.shape[0]) - templates.nbefore)
                                      / self.sampling_frequency * 1000.0, 3),
                       template_uv=floats(template[:, channels].T, 2))
        waveforms = self._extension("waveforms")
        if waveforms is not None and templates is not None:
            wfs = waveforms.get_waveforms_one_unit(unit_id, force_dense=False)
            sparsity = self.analyzer.sparsity
            sparse_channels = (sparsity.unit_id_to_channel_indices[unit_id] if sparsity is not None
                               else np.arange(wfs.shape[2]))
            position = {int(c): i for i, c in enumerate(sparse_channels)}
            step = max(1, len(wfs) // NUM_WAVEFORMS_SHOWN)
            chosen = wfs[::step][:NUM_WAVEFORMS_SHOWN]
            out["waveforms_uv"] = [floats(chosen[:, :, position[int(c)]], 1) if int(c) in position else None
                                   for c in channels]
        correlograms = self._extension("correlograms")
        if correlograms is not None:
            ccgs, bins = correlograms.get_data()
            out["acg"] = {"counts": ccgs[index, index].astype(int).tolist(), "bins_ms": floats(bins, 3)}
        spikes = self.spikes()
        own = spikes.of_unit(index)
        isi = self._extension("isi_histograms")
        if isi is not None:
            counts, bins = isi.get_data()
            out["isi"] = {"counts": counts[index].astype(int).tolist(), "bins_ms": floats(bins, 3),
                          "source": "isi_histograms extension"}
        else:  # a histogram of the unit's own spike times: reading, not computing an extension
            intervals_ms = np.diff(np.sort(spikes.sample_index[own])) / self.sampling_frequency * 1000.0
            counts, bins = np.histogram(intervals_ms, bins=ISI_BINS_MS)
            out["isi"] = {"counts": counts.astype(int).tolist(), "bins_ms": floats(bins, 3),
                          "source": "spike times (no isi_histograms extension)"}
        shown = own[:: max(1, len(own) // MAX_AMPLITUDE_POINTS)]
        amplitudes = self._extension("spike_amplitudes")
        if amplitudes is not None:
            values = self._memo("amplitudes", amplitudes.get_data)
            out["amplitudes"] = {"time_s": floats(spikes.sample_index[shown] / self.sampling_frequency, 3),
                                 "amplitude_uv": floats(values[shown], 1)}
        locations = self._extension("unit_locations")
        if locations is not None:
            out["location_um"] = floats(locations.get_data()[index], 1)
        out["num_spikes"] = int(len(own))
        return out

    def _qc(self, properties: dict) -> list[dict]:
        """Every metric with the ``default_qc`` threshold it passed or failed (``None`` when it has none)."""
        rows = []
        thresholds = self.thresholds()
        skip = {"default_qc", "qc_fail_reasons", "decoder_label", "decoder_probability", "bombcell_label"}
        for key, value in properties.items():
            if key in skip or isinstance(value, (str, bool)):
                continue
            rule = thresholds.get(key) or {}
            passed = None
            if rule:
                number = math.nan if value is None else float(value)
                passed = all([rule.get("less") is None or number < rule["less"],
                              rule.get("greater") is None or number > rule["greater"]])
            rows.append({"metric": key, "value": value, "less": rule.get("less"), "greater": rule.get("greater"),
                         "passed": passed})
        for key, rule in thresholds.items():  # thresholds on metrics the stream lacks fail (NaN)
            if key not in properties:
                rows.append({"metric": key, "value": None, "less": rule.get("less"), "greater": rule.get("greater"),
                             "passed": False})
        return rows

    def ccg(self, texts: list[str]) -> dict:
        """Cross-correlograms (and auto-correlograms on the diagonal) among the given units."""
        if not 2 <= len(texts) <= 8:
            raise WebError(400, "compare 2 to 8 units")
        ids = [self.unit_id(t) for t in texts]
        correlograms = self._extension("correlograms")
        if correlograms is None:
            raise WebError(404, "this stream has no correlograms extension")
        ccgs, bins = correlograms.get_data()
        indices = [self._analyzer_index.get(str(u)) for u in ids]
        if any(i is None for i in indices):
            raise WebError(404, "a unit is not in the analyzer")
        return {"unit_ids": texts, "bins_ms": floats(bins, 3),
                "counts": [[ccgs[i, j].astype(int).tolist() for j in indices] for i in indices]}

    def drift(self) -> dict:
        """Drift map points (time, depth, amplitude of a subsample of spikes) and the motion estimate."""
        def build():
            out: dict[str, Any] = {}
            locations = self._extension("spike_locations")
            spikes = self.spikes()
            if locations is not None:
                values = locations.get_data()
                shown = np.arange(0, len(values), max(1, len(values) // MAX_DRIFT_POINTS))
                depth_key = "y" if "y" in values.dtype.names else values.dtype.names[-1]
                amplitudes = self._extension("spike_amplitudes")
                out["time_s"] = floats(spikes.sample_index[shown] / self.sampling_frequency, 3)
                out["depth_um"] = floats(values[depth_key][shown], 1)
                out["amplitude_uv"] = floats(np.abs(amplitudes.get_data()[shown]), 1) if amplitudes else None
            motion_dir = self.layout.motion_folder(self.stream)
            out["motion"] = None
            if motion_dir.is_dir():
                out["motion"] = self._motion(motion_dir)
            return out
        return self._memo("drift", build)

    def _motion(self, folder: Path) -> dict | None:
        import spikeinterface as si

        try:
            with self.io_lock:
                motion = si.load(folder / "motion") if (folder / "motion").is_dir() else si.load(folder)
        except Exception as exc:  # a broken motion folder must not break the view
            return {"error": f"could not load motion: {exc}"}
        displacement = np.asarray(motion.displacement[0])
        return {"time_s": floats(motion.temporal_bins_s[0], 3), "depth_um": floats(motion.spatial_bins_um, 1),
                "displacement_um": floats(displacement.T, 2)}

    def recording(self, kind: str):
        """The raw (``kind="raw"``) or preprocessed recording, opened once."""
        import spikeinterface as si

        if kind not in ("raw", "preprocessed"):
            raise WebError(400, "kind must be raw or preprocessed")

        def open_recording():
            try:
                with self.io_lock:
                    if kind == "preprocessed":
                        return si.load(self.layout.step_output("preprocess", self.stream))
                    job = _read_json(self.layout.job_file(self.stream)) or {}
                    return si.load(job["recording"])
            except Exception as exc:
                raise WebError(404, f"cannot open the {kind} recording of {self.stream!r}: {exc}") from None
        return self._memo(f"recording:{kind}", open_recording)

    def traces(self, kind: str, start_s: float, duration_s: float, texts: list[str]) -> dict:
        """A window of traces (µV, channels sorted by depth) with the spikes of the given units in it."""
        if not (math.isfinite(start_s) and math.isfinite(duration_s)) or duration_s <= 0:
            raise WebError(400, "start_s and duration_s must be finite, duration_s positive")
        ids = [self.unit_id(t) for t in texts]
        recording = self.recording(kind)
        fs = recording.sampling_frequency
        duration_s = min(duration_s, MAX_TRACE_WINDOW_S)
        num_samples = recording.get_num_samples()
        start = int(np.clip(start_s * fs, 0, max(0, num_samples - 1)))
        end = int(min(num_samples, start + duration_s * fs))
        with self._lock:
            traces = recording.get_traces(start_frame=start, end_frame=end, return_in_uV=recording.has_scaleable_traces())
        max_samples = max(200, min(MAX_TRACE_SAMPLES, MAX_TRACE_VALUES // max(1, traces.shape[1])))
        step = max(1, math.ceil(traces.shape[0] / max_samples))
        locations = np.asarray(recording.get_channel_locations(), dtype=float)
        depth_order = np.argsort(locations[:, 1], kind="stable")
        out = {"kind": kind, "start_s": start / fs, "end_s": end / fs, "duration_total_s": num_samples / fs,
               "step_s": step / fs, "channel_ids": [str(recording.channel_ids[i]) for i in depth_order],
               "traces_uv": floats(traces[::step, depth_order].T, 1), "spikes": []}
        spikes = self.spikes()
        unit_channel = {}
        for unit_id, text in zip(ids, texts):
            index = self._analyzer_index.get(str(unit_id))
            if index is None:
                continue
            samples = spikes.sample_index[spikes.of_unit(index)]
            samples = samples[(samples >= start) & (samples < end)]
            unit_channel[text] = self.unit(text).get("peak_channel")
            out["spikes"].append({"unit_id": text, "time_s": floats(samples / fs, 4),
                                  "peak_channel_id": None if unit_channel[text] is None
                                  else str(self.analyzer.channel_ids[unit_channel[text]])})
        return out


class ResultsIndex:
    """The sessions and streams under one RESULTS_DIR, with a per-server cache of loaded streams.

    Parameters
    ----------
    results_dir : Path
        RESULTS_DIR: one session, or a folder holding several.
    """

    def __init__(self, results_dir: Path):
        self.root = Path(results_dir).resolve()
        if not self.root.is_dir():
            raise WebError(404, f"{results_dir} is not a folder")
        self._lock = threading.Lock()
        self._io_lock = threading.RLock()  # see StreamData's io_lock
        self._streams: dict[tuple[str, str], StreamData] = {}

    def sessions(self) -> dict[str, Path]:
        return find_sessions(self.root)

    def session_dir(self, session_id: str) -> Path:
        """The folder of a session id; 404 for an unknown one (ids are never used as paths)."""
        sessions = self.sessions()
        if session_id not in sessions:
            raise WebError(404, f"unknown session {session_id!r}")
        return sessions[session_id]

    def dashboard(self) -> dict:
        """Every session and stream with per-step status and unit counts."""
        out = []
        for session_id, folder in self.sessions().items():
            streams, problems = _stream_summaries(folder)
            files = _read_json(folder / "visualization_output.json")
            out.append({"session": session_id, "name": folder.name, "streams": streams, "problems": problems,
                        "has_visualization": files is not None})
        return {"results_dir": str(self.root), "sessions": out}

    def stream(self, session_id: str, stream: str) -> StreamData:
        """The loaded stream (cached, loaded once even when its first requests come together); 404 for unknown
        ids."""
        key = (session_id, stream)
        with self._lock:
            if key in self._streams:
                return self._streams[key]
        folder = self.session_dir(session_id)
        if stream not in ResultsLayout(folder).streams():
            raise WebError(404, f"unknown stream {stream!r} in session {session_id!r}")
        with self._io_lock:
            with self._lock:
                if key in self._streams:  # another request loaded it while this one waited
                    return self._streams[key]
            data = StreamData(folder, stream, io_lock=self._io_lock)
            with self._lock:
                self._streams[key] = data
            return data

    def visualization_files(self, session_id: str, stream: str) -> list[str]:
        """Paths (relative to RESULTS_DIR) of the stream's figures listed in visualization_output.json."""
        folder = self.session_dir(session_id)
        listing = ResultsLayout(folder).step_output("visualize", stream)
        if not listing.is_dir():
            return []
        return [p.relative_to(self.root).as_posix() for p in sorted(listing.glob("*.png"))]

    def resolve_file(self, relative: str) -> Path:
        """A file under RESULTS_DIR from a relative path; 4xx for anything outside it or missing.

        Parameters
        ----------
        relative : str
            POSIX path relative to RESULTS_DIR.

        Returns
        -------
        Path
            The resolved file, inside RESULTS_DIR.
        """
        if not relative or relative.startswith(("/", "\\")) or Path(relative).is_absolute() or ":" in relative:
            raise WebError(400, "path must be relative to RESULTS_DIR")
        if any(part == ".." for part in relative.replace("\\", "/").split("/")):
            raise WebError(400, "path must not contain '..'")
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise WebError(403, "path is outside RESULTS_DIR")
        if not path.is_file():
            raise WebError(404, f"no file {relative!r}")
        return path
