"""Pipeline steps, one module each. :data:`STEPS` is their order: the pipeline's table of contents."""

from . import curate, export_phy, nwb, postprocess, preprocess, sort, visualize
from .base import Step, StepContext, StreamSkipped, execute_step

STEPS: tuple[Step, ...] = (preprocess.STEP, sort.STEP, postprocess.STEP, curate.STEP, visualize.STEP, export_phy.STEP)

#: Session-level steps, run once per group of streams (block and recording) after every stream is done.
SESSION_STEPS: tuple[Step, ...] = (nwb.STEP,)


def step_by_name(name: str) -> Step:
    """The stream or session step called ``name``; a ``KeyError`` naming the valid steps otherwise."""
    for step in (*STEPS, *SESSION_STEPS):
        if step.name == name:
            return step
    raise KeyError(f"unknown step '{name}'; steps are: {sorted(s.name for s in (*STEPS, *SESSION_STEPS))}")


__all__ = ["STEPS", "SESSION_STEPS", "step_by_name", "Step", "StepContext", "StreamSkipped", "execute_step"]
