"""Pure functions: QC thresholds, names, hashing and error summaries."""

from __future__ import annotations

import math

import pandas as pd

from spikeline.config import Threshold
from spikeline.layout import ResultsLayout, safe_name, stream_name
from spikeline.provenance import atomic_write_json, read_json, stable_hash
from spikeline.steps.base import short_reason
from spikeline.steps.curate import qc_flags


def test_qc_thresholds_are_strict_and_nan_fails():
    metrics = pd.DataFrame(
        {"isi_violations_ratio": [0.1, 0.5, 0.1, math.nan], "presence_ratio": [0.9, 0.9, 0.8, 0.9]},
        index=["a", "b", "c", "d"],
    )
    thresholds = {"isi_violations_ratio": Threshold(less=0.5), "presence_ratio": Threshold(greater=0.8)}
    passed, reasons = qc_flags(metrics, thresholds)
    assert passed == [True, False, False, False]
    assert reasons[0] == ""
    assert reasons[1] == "isi_violations_ratio=0.5 (needs < 0.5)"
    assert reasons[2] == "presence_ratio=0.8 (needs > 0.8)"
    assert reasons[3] == "isi_violations_ratio=nan (needs < 0.5)"


def test_missing_metric_fails_every_unit():
    passed, reasons = qc_flags(pd.DataFrame({"snr": [5.0]}), {"amplitude_cutoff": Threshold(less=0.1)})
    assert passed == [False] and "amplitude_cutoff=nan" in reasons[0]


def test_names_are_safe():
    assert safe_name("Record Node 101#Neuropix-PXI-100.ProbeA") == "Record_Node_101_Neuropix-PXI-100.ProbeA"
    assert safe_name("..") == "unnamed" and safe_name("a/../b") == "a_.._b"
    assert stream_name(0, "imec1.ap", 2) == "block0_imec1.ap_recording3"


def test_layout_names(tmp_path):
    layout = ResultsLayout(tmp_path)
    assert layout.step_output("sort", "s") == tmp_path / "spikesorted" / "s"
    assert layout.step_record("curate", "s") == tmp_path / "provenance" / "s" / "curate.json"
    assert layout.processing_json == tmp_path / "processing.json"


def test_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_atomic_json_round_trip_and_torn_files(tmp_path):
    path = tmp_path / "x" / "record.json"
    atomic_write_json(path, {"status": "ok"})
    assert read_json(path) == {"status": "ok"}
    assert not [p for p in path.parent.iterdir() if p.name != "record.json"]  # no temporary left behind
    path.write_text('{"status": "o')  # a torn write reads as missing, never as done
    assert read_json(path) is None


def test_short_reason_picks_the_root_error():
    exc = RuntimeError("Spike sorting error trace:\nTraceback...\ntorch._C._LinAlgError: svd failed\n\nSee log.")
    assert short_reason(exc) == "torch._C._LinAlgError: svd failed"
    assert short_reason(ValueError("bad value")) == "ValueError: bad value"
