"""Visualize: the figures a person looks at first, per stream, as PNG files (no cloud, no credentials).

- ``drift_map.png``: spike depth against time, shaded by amplitude (from the analyzer's spike locations);
- ``motion.png``: the motion estimated at preprocessing (when it was computed);
- ``traces_raw.png`` / ``traces_preprocessed.png``: a 0.5 s snippet from the middle of the recording;
- ``unit_yield_by_depth.png``: units by depth, coloured by unit type (noise / MUA / SUA).

They are written to ``visualization/<stream>/`` and listed in ``visualization_output.json`` at the top of the
results. Figures are drawn on matplotlib ``Figure`` objects (no pyplot state, no global backend switch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import PipelineConfig
from ..layout import MOTION_SUBFOLDER
from .base import Step, StepContext

SNIPPET_S = 0.5
UNIT_TYPE_COLORS = {"SUA": "tab:green", "MUA": "tab:orange", "noise": "tab:gray"}


def params(config: PipelineConfig) -> dict[str, Any]:
    return {"snippet_s": SNIPPET_S, "figures": ["drift_map", "motion", "traces_raw", "traces_preprocessed",
                                               "unit_yield_by_depth"]}


def _figure(width_in: float = 10.0, height_in: float = 6.0):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    return figure, figure.add_subplot()


def _traces(recording, path: Path, title: str) -> None:
    import spikeinterface.widgets as sw

    middle_s = recording.get_total_duration() / 2
    figure, ax = _figure()
    sw.plot_traces(recording, time_range=(middle_s, min(middle_s + SNIPPET_S, recording.get_total_duration())),
                   order_channel_by_depth=True, return_in_uV=recording.has_scaleable_traces(), backend="matplotlib",
                   ax=ax)
    ax.set_title(title)
    figure.savefig(path, dpi=100)


def _unit_yield(curated, analyzer, path: Path) -> None:
    import numpy as np

    locations = analyzer.get_extension("unit_locations").get_data()
    index = {u: i for i, u in enumerate(analyzer.unit_ids)}
    types = (curated.get_property("decoder_label") if "decoder_label" in curated.get_property_keys()
             else np.array(["SUA"] * curated.get_num_units()))
    figure, ax = _figure(5.0, 7.0)
    all_depths = [locations[index[u], 1] for u in curated.unit_ids]
    edges = np.histogram_bin_edges(all_depths or [0.0], bins=20)
    depths = {unit_type: [d for d, t in zip(all_depths, types) if t == unit_type] for unit_type in UNIT_TYPE_COLORS}
    ax.hist(list(depths.values()), bins=edges, orientation="horizontal", stacked=True,
            color=list(UNIT_TYPE_COLORS.values()), label=[f"{t} ({len(d)})" for t, d in depths.items()])
    ax.set_xlabel("units")
    ax.set_ylabel("depth (um)")
    ax.legend()
    ax.set_title("unit yield by depth")
    figure.savefig(path, dpi=100)


def run(ctx: StepContext, inputs: dict[str, Path], output: Path) -> dict[str, Any]:
    import spikeinterface as si
    import spikeinterface.widgets as sw

    output.mkdir(parents=True)
    figures: dict[str, str] = {}
    analyzer = si.load_sorting_analyzer(inputs["postprocess"])
    if analyzer.has_extension("spike_locations"):
        figure, ax = _figure()
        sw.plot_drift_raster_map(sorting_analyzer=analyzer, scatter_decimate=5, backend="matplotlib", ax=ax)
        ax.set_title("drift map")
        figure.savefig(output / "drift_map.png", dpi=100)
        figures["drift_map"] = "drift_map.png"
    motion_folder = inputs["preprocess"] / MOTION_SUBFOLDER / "motion"
    if motion_folder.exists():
        figure, ax = _figure()
        sw.plot_motion(si.load(motion_folder), backend="matplotlib", ax=ax)
        figure.savefig(output / "motion.png", dpi=100)
        figures["motion"] = "motion.png"
    job = json.loads(inputs["job"].read_text())
    try:
        raw = si.load(job["recording"])
    except Exception:  # raw data moved since the run: the other figures still help
        raw = None
    if raw is not None:
        _traces(raw, output / "traces_raw.png", "raw")
        figures["traces_raw"] = "traces_raw.png"
    _traces(si.load(inputs["preprocess"]), output / "traces_preprocessed.png", "preprocessed")
    figures["traces_preprocessed"] = "traces_preprocessed.png"
    _unit_yield(si.load(inputs["curate"]), analyzer, output / "unit_yield_by_depth.png")
    figures["unit_yield_by_depth"] = "unit_yield_by_depth.png"
    return {"figures": figures}


STEP = Step(name="visualize", inputs=("job", "preprocess", "postprocess", "curate"), params=params, run=run)
