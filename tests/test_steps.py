"""Each step alone on a tiny session (16 channels, 10 s), with SpyKING CIRCUS 2 as the sorter.

Preprocessing is checked against the same chain written directly with SpikeInterface (an oracle test).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import quiet_config
from spikeline.layout import ResultsLayout
from spikeline.pipeline import job_kwargs
from spikeline.steps import STEPS, StepContext, execute_step
from spikeline.steps.dispatch import plan_sessions, write_jobs
from spikeline.synthetic import make_spikeglx_session

STEP_BY_NAME = {step.name: step for step in STEPS}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    session = make_spikeglx_session(root, num_channels=16, duration_s=10.0, num_units=5, seed=3)
    layout = ResultsLayout(root / "results")
    config = quiet_config(spikesorting={"sorter": "spykingcircus2"})
    (plan,) = plan_sessions(session.data_dir, config.dispatch)
    assert not plan.problems
    write_jobs(layout, session.data_dir, plan)
    ctx = StepContext(stream=plan.jobs[0]["stream"], layout=layout, config=config, job_kwargs=job_kwargs(config))
    return session, ctx


def run_until(ctx, name):
    """Run (or reuse) every step up to ``name``; return that step's record."""
    for step in STEPS:
        record = execute_step(step, ctx)
        if step.name == name:
            return record


def test_dispatch_job(tiny):
    session, ctx = tiny
    job = ctx.layout.job_file(ctx.stream).read_text()
    assert '"stream_id": "imec0.ap"' in job and '"probe_part_number": "NP1000"' in job
    assert ctx.stream == "block0_imec0.ap_recording1"


def test_preprocess_matches_the_spikeinterface_chain(tiny):
    import spikeinterface as si
    import spikeinterface.extractors as se
    import spikeinterface.preprocessing as spre

    session, ctx = tiny
    record = run_until(ctx, "preprocess")
    assert record["outputs"]["applied"] == ["phase_shift", "highpass_filter", "common_reference"]
    assert record["outputs"]["bad_channel_ids"] == []
    saved = si.load(ctx.layout.step_output("preprocess", ctx.stream))

    oracle = se.read_spikeglx(session.data_dir, stream_id="imec0.ap")
    oracle = spre.phase_shift(oracle, margin_ms=100.0)
    oracle = spre.highpass_filter(oracle, freq_min=300.0)
    oracle = spre.common_reference(oracle, reference="global", operator="median")
    start, end = 90_000, 150_000  # 3 s to 5 s, away from the edges
    np.testing.assert_allclose(saved.get_traces(start_frame=start, end_frame=end),
                               oracle.get_traces(start_frame=start, end_frame=end), atol=2)  # int16 rounding of chunk-wise medians
    np.testing.assert_array_equal(saved.get_channel_locations(), oracle.get_channel_locations())


def test_sort_step_writes_a_sorting_folder_and_the_sorter_log(tiny):
    import spikeinterface as si

    _, ctx = tiny
    record = run_until(ctx, "sort")
    assert record["outputs"]["sorter"] == "spykingcircus2" and record["outputs"]["device"] == "cpu"
    sorting = si.load(ctx.layout.step_output("sort", ctx.stream))
    assert sorting.get_num_units() == record["outputs"]["num_units"] > 0
    assert (ctx.layout.sorter_folder(ctx.stream) / "spikeinterface_log.json").exists()


def test_postprocess_step_computes_every_extension(tiny):
    import spikeinterface as si

    _, ctx = tiny
    record = run_until(ctx, "postprocess")
    analyzer = si.load(ctx.layout.step_output("postprocess", ctx.stream))
    assert set(analyzer.get_loaded_extension_names()) == set(ctx.config.postprocessing.extensions)
    assert analyzer.sparsity is not None
    qm = analyzer.get_extension("quality_metrics").get_data()
    for column in ("isi_violations_ratio", "presence_ratio", "amplitude_cutoff", "isolation_distance", "l_ratio",
                   "d_prime", "nn_hit_rate", "silhouette", "snr"):
        assert column in qm.columns
    assert record["outputs"]["quality_metric_columns"] == list(qm.columns)


def test_curate_step_flags_units_and_explains_failures(tiny):
    import spikeinterface as si

    _, ctx = tiny
    record = run_until(ctx, "curate")
    curated = si.load(ctx.layout.step_output("curate", ctx.stream))
    assert curated.get_num_units() == record["outputs"]["num_units"]
    reasons = curated.get_property("qc_fail_reasons")
    flags = curated.get_property("default_qc")
    # 10 s is shorter than presence_ratio's 60 s bins: the metric is NaN, and NaN fails
    assert not flags.any()
    assert all("presence_ratio=nan (needs > 0.8)" in r for r in reasons)
    assert ctx.layout.unit_labels_csv(ctx.stream).exists()
