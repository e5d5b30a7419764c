"""Open Ephys binary format: finding sessions, opening their Neuropixels streams, and a writer for synthetic ones.

A session is the folder holding ``Record Node <id>/`` folders (or a record node folder itself); each
``experiment<N>/recording<M>/structure.oebin`` describes the continuous streams of one block (experiment) and
segment (recording). Reading is SpikeInterface's ``read_openephys`` (neo), with the probe geometry from the
record node's ``settings.xml`` (probeinterface). Only AP-band Neuropixels streams are sorted: LFP, NI-DAQ, SYNC
and ADC streams are listed as not sorted. A ``continuous/`` folder without its ``structure.oebin`` is reported
with what to do.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import OpenedSession, StreamCandidate

if TYPE_CHECKING:
    from spikeinterface.core import BaseRecording

#: Stream-name fragments that are never sorted, with the reason.
NOT_SORTED = {"LFP": "LFP band (not sorted)", "NI-DAQ": "NI-DAQ auxiliary channels (not sorted)",
              "SYNC": "sync channel (not sorted)", "ADC": "ADC channels (not sorted)"}
NP1_AP_BIT_VOLTS = 0.1949999928474426  # uV per bit, as the Neuropix-PXI plugin writes it for NP1.0 AP


def _session_of(oebin: Path) -> Path:
    """``.../<session>/Record Node 101/experiment1/recording1/structure.oebin`` -> ``.../<session>``."""
    node = oebin.parents[2]
    return node.parent if node.name.startswith("Record Node") else node


def find_sessions(data_dir: Path) -> list[Path]:
    """Every Open Ephys session under ``data_dir``, from its ``structure.oebin`` files, plus folders that look like
    Open Ephys recordings (``continuous/`` inside ``recording<N>``) but lack them (reported as problems)."""
    sessions = {_session_of(p) for p in data_dir.rglob("structure.oebin")}
    for continuous in data_dir.rglob("continuous"):
        recording = continuous.parent
        if continuous.is_dir() and re.fullmatch(r"recording\d+", recording.name) and not (recording / "structure.oebin").exists():
            sessions.add(_session_of(recording / "structure.oebin"))
    return sorted(sessions)


def _not_sorted_reason(stream_name: str) -> str | None:
    return next((reason for key, reason in NOT_SORTED.items() if key in stream_name), None)


def open_session(session_dir: Path) -> OpenedSession:
    """Open every sortable stream of one Open Ephys session (all blocks; segments stay inside each recording).

    Parameters
    ----------
    session_dir : Path
        A session folder (see :func:`find_sessions`).

    Returns
    -------
    candidates, problems, not_sorted
        As for the other formats.
    """
    import spikeinterface.extractors as se

    problems, not_sorted, candidates = [], [], []
    for recording_dir in sorted({p.parents[2] for p in session_dir.rglob("continuous/*/continuous.dat")}):
        if not (recording_dir / "structure.oebin").exists():
            problems.append({"path": str(recording_dir), "error": (
                f"{recording_dir} has continuous data but no structure.oebin. Open Ephys writes this file when a "
                "recording starts and neo needs it for channel counts and gains: copy it from the acquisition "
                "machine (it is small), or re-export the recording from Open Ephys.")})
    if problems and not list(session_dir.rglob("structure.oebin")):
        return [], problems, []
    try:
        stream_names, _ = se.get_neo_streams("openephysbinary", session_dir)
        num_blocks = se.get_neo_num_blocks("openephysbinary", session_dir)
    except Exception as exc:
        return [], problems + [{"path": str(session_dir), "error": f"cannot read Open Ephys session {session_dir}: "
                                f"{exc}. Check that every structure.oebin matches its continuous.dat files."}], []
    for stream_name in stream_names:
        reason = _not_sorted_reason(stream_name)
        if reason:
            not_sorted.append({"path": f"{session_dir}:{stream_name}", "reason": reason})
            continue
        for block_index in range(num_blocks):
            try:
                recording = se.read_openephys(session_dir, stream_name=stream_name, block_index=block_index)
            except Exception as exc:
                problems.append({"path": str(session_dir), "error": f"cannot open {stream_name} (block {block_index}) "
                                 f"in {session_dir}: {exc}"})
                continue
            if not recording.has_probe():
                problems.append({"path": str(session_dir), "error": (
                    f"{session_dir}: stream '{stream_name}' has no probe geometry: its record node's settings.xml does "
                    "not describe a Neuropixels probe for it. Copy settings.xml from the acquisition machine next to "
                    "the experiment folders, or describe the probe with a spikeline_input.yaml (reader: "
                    "read_openephys, probe: probe.json).")})
                continue
            stream_id = stream_name.split("#")[-1]
            files = sorted(session_dir.rglob("structure.oebin")) + sorted(session_dir.rglob("settings*.xml"))
            candidates.append(StreamCandidate(stream_id=stream_id, recording=recording, block_index=block_index,
                                              files=files))
    return candidates, problems, not_sorted


# --------------------------------------------------------------------------------------------------------------
# Writer (synthetic sessions for tests and demos)
# --------------------------------------------------------------------------------------------------------------
def _settings_xml(probe_names: list[str], positions: list[np.ndarray]) -> str:
    streams = "".join(
        f'<STREAM name="{name}-AP" description="Neuropixels AP band" sample_rate="30000.0" channel_count="{len(pos)}"/>'
        f'<STREAM name="{name}-LFP" description="Neuropixels LFP band" sample_rate="2500.0" channel_count="{len(pos)}"/>'
        for name, pos in zip(probe_names, positions)
    )
    probes = []
    for index, (name, pos) in enumerate(zip(probe_names, positions)):
        channels = " ".join(f'CH{c}="0"' for c in range(len(pos)))
        xpos = " ".join(f'CH{c}="{x:g}"' for c, (x, _) in enumerate(pos))
        ypos = " ".join(f'CH{c}="{y:g}"' for c, (_, y) in enumerate(pos))
        probes.append(
            f'<NP_PROBE slot="2" port="{index + 1}" dock="1" probe_serial_number="1800510000{index}" '
            f'probe_part_number="PRB_1_4_0480_1" probe_name="Neuropixels 1.0" custom_probe_name="{name}" '
            f'isEnabled="1" apGainValue="500x" lfpGainValue="250x" referenceChannel="Ext" filterCut="ON" '
            f'num_adcs="32"><CHANNELS {channels}/><ELECTRODE_XPOS {xpos}/><ELECTRODE_YPOS {ypos}/></NP_PROBE>'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<SETTINGS><INFO><VERSION>0.6.7</VERSION><PLUGIN_API_VERSION>8'
        "</PLUGIN_API_VERSION><DATE>1 Jan 2026 12:00:00</DATE><OS>Windows 10</OS><MACHINE>rig</MACHINE></INFO>"
        '<SIGNALCHAIN><PROCESSOR name="Neuropix-PXI" insertionPoint="0" pluginName="Neuropix-PXI" type="4" index="0" '
        'libraryName="Neuropix-PXI" libraryVersion="0.4.1" processorType="2" nodeId="100">'
        f'{streams}<EDITOR isCollapsed="0" isDrawerOpen="0" displayName="Neuropix-PXI" Type="Visualizer">'
        f'{"".join(probes)}</EDITOR></PROCESSOR>'
        '<PROCESSOR name="Record Node" insertionPoint="1" pluginName="Record Node" type="0" index="1" '
        'libraryName="" libraryVersion="" processorType="8" nodeId="101"/></SIGNALCHAIN></SETTINGS>\n'
    )


def write_openephys_session(recordings: list["BaseRecording"], folder: Path, probe_names: list[str] | None = None,
                            bit_volts: float = NP1_AP_BIT_VOLTS) -> Path:
    """Write single-segment NP1.0 recordings as one Open Ephys binary session (Neuropix-PXI, one probe each).

    Parameters
    ----------
    recordings : list of BaseRecording
        One per probe, traces in microvolts, on :func:`spikeline.formats.spikeglx.np1_probe` geometry.
    folder : Path
        Session folder to create; it will hold ``Record Node 101/``.
    probe_names : list of str | None
        ``ProbeA``, ``ProbeB`` ... by default.
    bit_volts : float
        Microvolts per bit of the int16 data.

    Returns
    -------
    Path
        The session folder.
    """
    folder = Path(folder)
    probe_names = probe_names or [f"Probe{chr(ord('A') + i)}" for i in range(len(recordings))]
    node = folder / "Record Node 101"
    recording_dir = node / "experiment1" / "recording1"
    continuous = []
    for name, recording in zip(probe_names, recordings):
        stream_folder = f"Neuropix-PXI-100.{name}-AP"
        target = recording_dir / "continuous" / stream_folder
        target.mkdir(parents=True, exist_ok=True)
        counts = np.round(recording.get_traces(return_in_uV=False) / bit_volts).astype("int16")
        counts.tofile(target / "continuous.dat")
        first_sample = 1000
        np.save(target / "sample_numbers.npy", np.arange(first_sample, first_sample + len(counts), dtype="int64"))
        np.save(target / "timestamps.npy", np.arange(first_sample, first_sample + len(counts)) / recording.sampling_frequency)
        continuous.append({
            "folder_name": f"{stream_folder}/",
            "sample_rate": recording.sampling_frequency,
            "source_processor_name": "Neuropix-PXI",
            "source_processor_id": 100,
            "stream_name": f"{name}-AP",
            "recorded_processor": "Record Node",
            "recorded_processor_id": 101,
            "num_channels": recording.get_num_channels(),
            "channels": [
                {"channel_name": f"AP{c + 1}", "description": "Neuropixels AP channel", "identifier": "neuropixels.ap",
                 "history": "Neuropix-PXI -> Record Node", "bit_volts": bit_volts, "units": "uV",
                 "source_processor_index": c, "recorded_processor_index": c}
                for c in range(recording.get_num_channels())
            ],
        })
    (recording_dir / "structure.oebin").write_text(
        json.dumps({"GUI version": "0.6.7", "continuous": continuous, "events": [], "spikes": []}, indent=2))
    node.mkdir(parents=True, exist_ok=True)
    (node / "settings.xml").write_text(
        _settings_xml(probe_names, [r.get_channel_locations() for r in recordings]))
    return folder
