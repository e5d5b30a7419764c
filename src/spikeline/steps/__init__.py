"""Pipeline steps, one module each. :data:`STEPS` is their order: the pipeline's table of contents."""

from . import curate, postprocess, preprocess, sort, visualize
from .base import Step, StepContext, StreamSkipped, execute_step

STEPS: tuple[Step, ...] = (preprocess.STEP, sort.STEP, postprocess.STEP, curate.STEP, visualize.STEP)

__all__ = ["STEPS", "Step", "StepContext", "StreamSkipped", "execute_step"]
