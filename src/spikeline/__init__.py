"""spikeline: raw extracellular recordings to curated, quality-controlled single units.

The public API is small and light to import (no torch, kilosort or SpikeInterface at import time)::

    from spikeline import load_config, run_pipeline
    summary = run_pipeline("data/", "results/", load_config("config.yaml"))
"""

from .config import PipelineConfig, load_config
from .errors import ConfigError, InputError, SpikelineError, StepFailed

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "InputError",
    "PipelineConfig",
    "SpikelineError",
    "StepFailed",
    "__version__",
    "load_config",
    "run_pipeline",
]


def run_pipeline(*args, **kwargs):
    """Run the whole pipeline; see :func:`spikeline.pipeline.run_pipeline`."""
    from .pipeline import run_pipeline as _run

    return _run(*args, **kwargs)
