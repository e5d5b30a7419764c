"""Pipeline steps, one module each. :data:`STEPS` is their order: the pipeline's table of contents."""

from . import curate, export_phy, nwb, postprocess, preprocess, sort, visualize
from .base import Step, StepContext, StreamSkipped, execute_step

STEPS: tuple[Step, ...] = (preprocess.STEP, sort.STEP, postprocess.STEP, curate.STEP, visualize.STEP, export_phy.STEP)

#: Session-level steps, run once per group of streams (block and recording) after every stream is done.
SESSION_STEPS: tuple[Step, ...] = (nwb.STEP,)

__all__ = ["STEPS", "SESSION_STEPS", "Step", "StepContext", "StreamSkipped", "execute_step"]
