"""The fault tests' reference: one uninterrupted ``spikeline run`` of a tiny session (see :mod:`faults`)."""

from __future__ import annotations

import time

import pytest
from faults import CONFIG, STEPS, Reference, outcome, run, step_record_path

from spikeline.layout import ResultsLayout
from spikeline.provenance import read_json
from spikeline.synthetic import make_spikeglx_session


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Reference:
    """One uninterrupted run of the fault tests' session and configuration."""
    root = tmp_path_factory.mktemp("reliability_reference")
    session = make_spikeglx_session(root / "data", num_channels=16, duration_s=10.0, num_units=4, seed=5)
    config = root / "config.yaml"
    config.write_text(CONFIG)
    results = root / "reference"
    t0 = time.perf_counter()
    code, output = run(session.data_dir, results, config)
    assert code == 0, output
    duration_s = time.perf_counter() - t0
    (stream,) = ResultsLayout(results).streams()
    durations = {step: read_json(step_record_path(results, step, stream))["duration_s"] for step in STEPS}
    return Reference(session.data_dir, config, results, stream, duration_s, durations, outcome(results))
