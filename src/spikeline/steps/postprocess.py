"""Postprocess: a SortingAnalyzer (binary_folder) with the configured extensions and metrics.

The analyzer is sparse (radius around each unit's main channel), reads the preprocessed recording saved by
the preprocess step, and computes all extensions in one call so that SpikeInterface orders their dependencies
and shares passes over the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import PipelineConfig
from .base import Step, StepContext


def params(config: PipelineConfig) -> dict[str, Any]:
    return config.step_params("postprocessing")


def run(ctx: StepContext, inputs: dict[str, Path], output: Path) -> dict[str, Any]:
    import spikeinterface as si

    p = ctx.config.postprocessing
    recording = si.load(inputs["preprocess"])
    sorting = si.load(inputs["sort"])
    analyzer = si.create_sorting_analyzer(
        sorting, recording, format="binary_folder", folder=output, sparse=True, return_in_uV=True,
        sparsity_kwargs=dict(p.sparsity), job_kwargs=ctx.job_kwargs,
    )
    analyzer.compute(dict(p.extensions), **ctx.job_kwargs)
    metrics = analyzer.get_extension("quality_metrics").get_data()
    return {
        "num_units": int(analyzer.get_num_units()),
        "extensions": analyzer.get_saved_extension_names(),
        "quality_metric_columns": list(metrics.columns),
    }


STEP = Step(name="postprocess", inputs=("preprocess", "sort"), params=params, run=run)
