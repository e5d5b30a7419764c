"""The demo's promise, at the demo's size: Kilosort4 on CPU finds at least 90% of the ground-truth units."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from spikeline.cli import main
from spikeline.evaluate import evaluate_results
from spikeline.synthetic import DEMO_NUM_UNITS


@pytest.mark.slow
def test_demo_reaches_90_percent_well_detected(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "accuracy against ground truth" in result.output and "si.load(" in result.output
    scores = evaluate_results(tmp_path / "results", tmp_path / "data" / "ground_truth")
    (stream_scores,) = scores.values()
    assert stream_scores["num_gt_units"] == DEMO_NUM_UNITS
    assert stream_scores["well_detected_fraction"] >= 0.9, stream_scores
