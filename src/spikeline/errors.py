"""Exceptions raised by spikeline.

Every error a user can act on derives from :class:`SpikelineError` and carries a message that names
the file or key at fault and says what to do::

    SpikelineError
    ├── ConfigError       a configuration key, type or value is invalid (raised before any work)
    ├── InputError        raw data cannot be used as it is (missing .meta, size mismatch, no streams ...)
    └── StepFailed        a pipeline step failed; its provenance and log hold the traceback
"""

from __future__ import annotations

from pathlib import Path


class SpikelineError(Exception):
    """Base class of all spikeline errors."""


class ConfigError(SpikelineError, ValueError):
    """A configuration key, type or value is invalid."""


class InputError(SpikelineError):
    """Raw input data that cannot be processed as it is."""


class StepFailed(SpikelineError):
    """A pipeline step failed for one stream.

    Parameters
    ----------
    step : str
        Name of the step that failed.
    stream : str
        Name of the stream it failed on.
    reason : str
        One-line reason (the original exception's message).
    log_path : Path | None
        Where the full log and traceback are.
    """

    def __init__(self, step: str, stream: str, reason: str, log_path: Path | None = None):
        self.step = step
        self.stream = stream
        self.reason = reason
        self.log_path = log_path
        where = f" (log: {log_path})" if log_path else ""
        super().__init__(f"step '{step}' failed on stream '{stream}': {reason}{where}")
