"""Synthetic ground-truth sessions written in real vendor formats (for the demo, tests and benchmarks).

The spikes and templates come from SpikeInterface's ground-truth generator on a Neuropixels 1.0 geometry;
the traces are written as a SpikeGLX session the way SpikeGLX saves one, and the ground-truth sorting is
saved beside it (never inside the session folder) so accuracy can be measured after a run.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from .formats.spikeglx import ap_bin_path, np1_probe, write_ap_stream
from .layout import safe_name, stream_name

GROUND_TRUTH_INFO = "ground_truth.json"

#: The demo session (``spikeline demo`` / ``make demo``): sized for Kilosort4 on a 2-core CPU (about 3 minutes).
DEMO_NUM_CHANNELS = 32
DEMO_DURATION_S = 60.0
DEMO_NUM_UNITS = 16


@dataclass(frozen=True)
class SyntheticSession:
    """Where a synthetic session was written.

    Attributes
    ----------
    data_dir : Path
        The session folder to pass to ``spikeline run``.
    ground_truth_dir : Path
        One SpikeInterface sorting folder per stream name, plus ``ground_truth.json``.
    streams : tuple of str
        The stream names spikeline will give the session's AP streams.
    """

    data_dir: Path
    ground_truth_dir: Path
    streams: tuple[str, ...]

    def ground_truth_sorting(self, stream: str):
        """Load the ground-truth sorting of one stream."""
        import spikeinterface as si

        return si.load(self.ground_truth_dir / stream)


def make_spikeglx_session(
    folder: str | Path,
    *,
    run_name: str = "synthetic",
    num_probes: int = 1,
    num_channels: int = 32,
    duration_s: float = 60.0,
    num_units: int = 16,
    firing_rate_hz: float = 10.0,
    noise_level_uv: float = 5.0,
    seed: int = 0,
) -> SyntheticSession:
    """Write a ground-truth SpikeGLX session: ``folder/raw/<run>_g0/...`` and ``folder/ground_truth/``.

    Parameters
    ----------
    folder : str | Path
        Parent folder; ``raw/`` and ``ground_truth/`` are created inside it.
    run_name : str, default: "synthetic"
        SpikeGLX run name (the session folder is ``raw/<run_name>_g0``).
    num_probes : int, default: 1
        Number of NP1.0 probes (``imec0``, ``imec1``, ...), each with its own units.
    num_channels : int, default: 32
        AP channels saved per probe (the first N readout channels, bank 0).
    duration_s : float, default: 60.0
        Recording length in seconds.
    num_units : int, default: 16
        Ground-truth units per probe.
    firing_rate_hz : float, default: 10.0
        Mean firing rate of each unit.
    noise_level_uv : float, default: 5.0
        Standard deviation of the background noise, in microvolts.
    seed : int, default: 0
        Seed of the generator (probe ``k`` uses ``seed + k``).

    Returns
    -------
    SyntheticSession
    """
    from spikeinterface.core import NumpyFolderSorting, generate_ground_truth_recording

    folder = Path(folder)
    data_dir = folder / "raw" / f"{run_name}_g0"
    gt_dir = folder / "ground_truth"
    gt_dir.mkdir(parents=True, exist_ok=True)
    streams = []
    info = {}
    for probe_index in range(num_probes):
        recording, gt_sorting = generate_ground_truth_recording(
            durations=[duration_s],
            sampling_frequency=30000.0,
            num_channels=num_channels,
            num_units=num_units,
            probe=np1_probe(num_channels),
            generate_sorting_kwargs={"firing_rates": firing_rate_hz, "refractory_period_ms": 4.0},
            noise_kwargs={"noise_levels": noise_level_uv, "strategy": "on_the_fly"},
            seed=seed + probe_index,
        )
        write_ap_stream(recording, ap_bin_path(folder / "raw", run_name, probe_index=probe_index))
        name = stream_name(0, f"imec{probe_index}.ap", 0)
        with warnings.catch_warnings():  # a generated sorting has no provenance to save: expected, not news
            warnings.filterwarnings("ignore", message="The extractor is not serializable", category=UserWarning)
            NumpyFolderSorting.write_sorting(gt_sorting, gt_dir / name, overwrite=True)
        streams.append(name)
        info[name] = {
            "num_units": num_units,
            "num_channels": num_channels,
            "duration_s": duration_s,
            "firing_rate_hz": firing_rate_hz,
            "noise_level_uv": noise_level_uv,
            "seed": seed + probe_index,
            "session": safe_name(data_dir.name),
        }
    (gt_dir / GROUND_TRUTH_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return SyntheticSession(data_dir=data_dir, ground_truth_dir=gt_dir, streams=tuple(streams))
