"""The AIND ephys pipeline's per-step argument strings, mapped onto spikeline's configuration.

Users coming from the AIND pipeline (or the Kempner wrapper scripts) pass strings such as
``--preprocessing_args "--denoising destripe --motion apply"``; :func:`aind_overrides` turns them into the same
configuration keys spikeline's YAML uses, so both routes give one validated configuration. Options spikeline
does not implement are errors that list the ones it understands.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from .errors import ConfigError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # raise instead of printing usage and exiting
        raise ConfigError(f"{self.prog}: {message}. Understood options: {self.understood()}")

    def understood(self) -> list[str]:
        return sorted(o for action in self._actions for o in action.option_strings if o not in ("-h", "--help"))


def _preprocessing_parser() -> _Parser:
    parser = _Parser(prog="--preprocessing_args", add_help=False)
    parser.add_argument("--denoising", choices=["cmr", "destripe"])
    parser.add_argument("--filter-type", choices=["highpass", "bandpass"])
    parser.add_argument("--no-remove-out-channels", action="store_true")
    parser.add_argument("--no-remove-bad-channels", action="store_true")
    parser.add_argument("--max-bad-channel-fraction", type=float)
    parser.add_argument("--motion", choices=["skip", "compute", "apply"])
    parser.add_argument("--motion-preset")
    parser.add_argument("--motion-temporal-bin-s", type=float)
    return parser


def _spikesort_parser() -> _Parser:
    parser = _Parser(prog="--spikesort_args", add_help=False)
    parser.add_argument("--skip-motion-correction", action="store_true")
    parser.add_argument("--min-drift-channels", type=int)
    return parser


def _job_dispatch_parser() -> _Parser:
    parser = _Parser(prog="--job_dispatch_args", add_help=False)
    parser.add_argument("--input", choices=["aind", "spikeglx", "openephys", "nwb", "spikeinterface"])
    parser.add_argument("--no-split-segments", action="store_true")
    parser.add_argument("--split-groups", action="store_true")
    parser.add_argument("--no-split-groups", action="store_true")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--debug-duration", type=float)
    parser.add_argument("--skip-timestamps-check", action="store_true")
    parser.add_argument("--min-recording-duration", type=float)
    parser.add_argument("--multi-session", action="store_true")  # spikeline always handles many sessions
    return parser


def _parse(parser: _Parser, text: str | None) -> argparse.Namespace | None:
    return parser.parse_args(shlex.split(text)) if text else None


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def aind_overrides(preprocessing_args: str | None = None, spikesort_args: str | None = None,
                   job_dispatch_args: str | None = None) -> dict[str, Any]:
    """Configuration overrides equivalent to AIND argument strings.

    Parameters
    ----------
    preprocessing_args : str | None
        e.g. ``"--denoising destripe --motion apply --motion-preset dredge"``.
    spikesort_args : str | None
        e.g. ``"--skip-motion-correction --min-drift-channels 64"``.
    job_dispatch_args : str | None
        e.g. ``"--input spikeglx --debug --debug-duration 60"``.

    Returns
    -------
    dict
        Nested overrides for :func:`spikeline.config.load_config`.

    Raises
    ------
    ConfigError
        On an option spikeline does not implement, listing the ones it does.
    """
    overrides: dict[str, Any] = {}
    pre = _parse(_preprocessing_parser(), preprocessing_args)
    if pre is not None:
        section = overrides.setdefault("preprocessing", {})
        _set(section, "denoising", pre.denoising)
        _set(section, "filter_type", pre.filter_type)
        _set(section, "max_bad_channel_fraction", pre.max_bad_channel_fraction)
        _set(section, "motion", pre.motion)
        _set(section, "motion_preset", pre.motion_preset)
        _set(section, "motion_temporal_bin_s", pre.motion_temporal_bin_s)
        if pre.no_remove_out_channels:
            section["remove_out_channels"] = False
        if pre.no_remove_bad_channels:
            section["remove_bad_channels"] = False
    sort = _parse(_spikesort_parser(), spikesort_args)
    if sort is not None:
        section = overrides.setdefault("spikesorting", {})
        if sort.skip_motion_correction:
            section["skip_motion_correction"] = True
        _set(section, "min_drift_channels", sort.min_drift_channels)
    dispatch = _parse(_job_dispatch_parser(), job_dispatch_args)
    if dispatch is not None:
        section = overrides.setdefault("dispatch", {})
        _set(section, "input", dispatch.input)
        _set(section, "debug_duration_s", dispatch.debug_duration)
        _set(section, "min_duration_s", dispatch.min_recording_duration)
        if dispatch.debug:
            section["debug"] = True
        if dispatch.no_split_segments:
            section["split_segments"] = False
        if dispatch.split_groups or dispatch.no_split_groups:
            section["split_groups"] = bool(dispatch.split_groups)
        if dispatch.skip_timestamps_check:
            section["timestamps"] = "reset"
    return overrides
