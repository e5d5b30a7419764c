"""Typed, validated pipeline configuration.

One YAML file (or none: every field has a default) maps onto :class:`PipelineConfig`, with one section per
step. Our own fields carry units in their names (``max_bad_channel_fraction``, ``min_drift_channels``,
``chunk_duration_s``). Pass-through sections (``highpass_filter``, ``common_reference``, sorter parameters,
analyzer extensions ...) keep SpikeInterface's own keyword names; their keys are checked against the
installed library (``inspect.signature`` / ``get_default_sorter_params``) rather than copied from it.

Unknown keys, wrong types and out-of-range values raise :class:`~spikeline.errors.ConfigError` before any work
starts, with a message that names the key and lists the valid choices.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

SORTERS = ("kilosort4", "spykingcircus2")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_kwargs(func_name: str, func, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Raise if ``kwargs`` holds a name that ``func`` does not accept (functions taking ``**kwargs`` accept all)."""
    parameters = inspect.signature(func).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in parameters):
        return kwargs
    accepted = [
        name
        for name, p in inspect.signature(func).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in ("recording", "self")
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown} for {func_name}; valid arguments are: {sorted(accepted)}")
    return kwargs


class JobParams(_Section):
    """Parallelism and progress reporting (never part of a step's identity: results do not depend on it)."""

    n_jobs: int = Field(-1, description="Worker processes for chunked work; -1 uses every core.")
    chunk_duration_s: float = Field(1.0, gt=0, description="Chunk length for chunked processing, in seconds.")
    progress_bar: bool | None = Field(None, description="Show progress bars; default: only on a terminal.")

    @field_validator("n_jobs")
    @classmethod
    def _n_jobs(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("n_jobs must be -1 (all cores) or a positive number of workers")
        return value


class PreprocessingParams(_Section):
    """Phase shift, filtering, bad-channel removal and common referencing (AIND pipeline names)."""

    phase_shift: dict[str, Any] = Field(
        default_factory=lambda: {"margin_ms": 100.0},
        description="spikeinterface.preprocessing.phase_shift arguments; applied when the probe has "
        "inter-sample shifts (Neuropixels).",
    )
    filter_type: Literal["highpass"] = "highpass"
    highpass_filter: dict[str, Any] = Field(
        default_factory=lambda: {"freq_min": 300.0}, description="spikeinterface.preprocessing.highpass_filter arguments."
    )
    detect_bad_channels: dict[str, Any] = Field(
        default_factory=lambda: {"method": "coherence+psd", "seed": 0},
        description="spikeinterface.preprocessing.detect_bad_channels arguments (IBL coherence+psd by default).",
    )
    remove_bad_channels: bool = Field(True, description="Remove the detected dead, noisy and outside channels.")
    max_bad_channel_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="Skip the stream (with a recorded reason) above this fraction of bad channels."
    )
    denoising: Literal["cmr"] = "cmr"
    common_reference: dict[str, Any] = Field(
        default_factory=lambda: {"reference": "global", "operator": "median"},
        description="spikeinterface.preprocessing.common_reference arguments.",
    )

    @model_validator(mode="after")
    def _check_passthrough(self) -> "PreprocessingParams":
        import spikeinterface.preprocessing as spre

        for name in ("phase_shift", "highpass_filter", "detect_bad_channels", "common_reference"):
            _check_kwargs(f"preprocessing.{name}", getattr(spre, name), getattr(self, name))
        return self


class SpikeSortingParams(_Section):
    """Which sorter runs and with which parameter overrides."""

    sorter: Literal["kilosort4", "spykingcircus2"] = "kilosort4"
    skip_motion_correction: bool = Field(False, description="Turn the sorter's own drift correction off.")
    min_drift_channels: int = Field(
        96, ge=0, description="Below this channel count the sorter's own drift correction is turned off (as in AIND)."
    )
    sorter_params: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"kilosort4": {}, "spykingcircus2": {"apply_preprocessing": False}},
        description="Per-sorter overrides of SpikeInterface's sorter parameters; names are checked against the "
        "installed sorter.",
    )

    @field_validator("sorter_params")
    @classmethod
    def _known_sorters(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = sorted(set(value) - set(SORTERS))
        if unknown:
            raise ValueError(f"unknown sorter(s) {unknown}; valid sorters are: {list(SORTERS)}")
        return value

    def resolved_sorter_params(self) -> dict[str, Any]:
        """Overrides for the selected sorter, checked against the installed sorter's parameter names.

        Returns
        -------
        dict
            Only the overrides (SpikeInterface fills the rest from its own defaults).

        Raises
        ------
        ConfigError
            If the sorter is not installed or a parameter name is unknown.
        """
        import spikeinterface.sorters as ss

        if self.sorter not in ss.installed_sorters():
            raise ConfigError(
                f"sorter '{self.sorter}' is not installed in this environment. Installed sorters: "
                f"{sorted(ss.installed_sorters())}. For Kilosort4 run `pip install torch==2.13.0` (CPU) "
                f"then `pip install 'spikeline[kilosort4]'`."
            )
        overrides = copy.deepcopy(self.sorter_params.get(self.sorter, {}))
        valid = ss.get_default_sorter_params(self.sorter)
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ConfigError(
                f"spikesorting.sorter_params.{self.sorter}: unknown parameter(s) {unknown}. "
                f"Valid {self.sorter} parameters are: {sorted(valid)}"
            )
        return overrides


def _default_extensions() -> dict[str, dict[str, Any]]:
    return {
        "random_spikes": {"method": "uniform", "max_spikes_per_unit": 500, "seed": 0},
        "noise_levels": {"random_slices_kwargs": {"seed": 0}},
        "waveforms": {"ms_before": 2.0, "ms_after": 3.0},
        "templates": {},
        "spike_amplitudes": {},
        "unit_locations": {"method": "monopolar_triangulation"},
        "correlograms": {"window_ms": 50.0, "bin_ms": 1.0},
        "template_similarity": {"method": "l1"},
        "principal_components": {"n_components": 5, "mode": "by_channel_local", "whiten": True},
        "quality_metrics": {},
        "template_metrics": {},
    }


class PostprocessingParams(_Section):
    """The SortingAnalyzer: sparsity and the extensions computed, with SpikeInterface's parameter names."""

    sparsity: dict[str, Any] = Field(
        default_factory=lambda: {"method": "radius", "radius_um": 100.0},
        description="spikeinterface.core.estimate_sparsity arguments.",
    )
    extensions: dict[str, dict[str, Any]] = Field(
        default_factory=_default_extensions,
        description="Analyzer extensions to compute, each with its parameters (SpikeInterface names).",
    )

    @model_validator(mode="after")
    def _check_extensions(self) -> "PostprocessingParams":
        from spikeinterface.core import estimate_sparsity
        from spikeinterface.core.sortinganalyzer import get_extension_class

        _check_kwargs("postprocessing.sparsity", estimate_sparsity, self.sparsity)
        from spikeinterface.core.sortinganalyzer import _builtin_extensions

        for name, params in self.extensions.items():
            if name not in _builtin_extensions:
                raise ValueError(f"postprocessing.extensions: unknown extension '{name}'; valid extensions are: "
                                 f"{sorted(_builtin_extensions)}")
            ext_class = get_extension_class(name, auto_import=True)
            _check_kwargs(f"postprocessing.extensions.{name}", ext_class._set_params, params)
        for required in ("random_spikes", "templates", "quality_metrics"):
            if required not in self.extensions:
                raise ValueError(f"postprocessing.extensions must include '{required}' (curation needs it)")
        return self


class Threshold(_Section):
    """A metric threshold in SpikeInterface's format; comparisons are strict and NaN fails."""

    less: float | None = None
    greater: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> "Threshold":
        if self.less is None and self.greater is None:
            raise ValueError("a threshold needs 'less' and/or 'greater'")
        return self


class CurationParams(_Section):
    """Deduplication and the ``default_qc`` flag."""

    duplicated_spikes: dict[str, Any] = Field(
        default_factory=lambda: {"censored_period_ms": 0.3, "method": "keep_first"},
        description="spikeinterface.curation.remove_duplicated_spikes arguments.",
    )
    redundant_units: dict[str, Any] = Field(
        default_factory=lambda: {"duplicate_threshold": 0.9},
        description="spikeinterface.curation.remove_redundant_units arguments (spike-train agreement).",
    )
    default_qc: dict[str, Threshold] = Field(
        default_factory=lambda: {
            "isi_violations_ratio": Threshold(less=0.5),
            "presence_ratio": Threshold(greater=0.8),
            "amplitude_cutoff": Threshold(less=0.1),
        },
        description="Quality-metric thresholds a unit must pass to be flagged default_qc=True (strict; NaN fails).",
    )

    @model_validator(mode="after")
    def _check_passthrough(self) -> "CurationParams":
        import spikeinterface.curation as scur

        _check_kwargs("curation.duplicated_spikes", scur.remove_duplicated_spikes, self.duplicated_spikes)
        _check_kwargs("curation.redundant_units", scur.remove_redundant_units, self.redundant_units)
        return self


class NwbExportParams(_Section):
    """One NWB file per session, block and recording (all probes), written after every stream is done."""

    enabled: bool = Field(True, description="Write the NWB file at the end of `spikeline run`.")
    backend: Literal["hdf5", "zarr"] = Field(
        "hdf5", description="hdf5 (default, what DANDI validates) or zarr (only where hdmf-zarr files can be "
        "validated on this Python; checked before any work).",
    )
    write_raw: bool = Field(False, description="Also write each probe's raw (not preprocessed) traces.")
    write_lfp: bool = Field(False, description="Also write an LFP series per probe, band-passed and decimated "
                            "from the raw AP-band traces.")
    lfp_freq_min_hz: float = Field(0.1, gt=0, description="LFP band-pass low edge, in Hz.")
    lfp_freq_max_hz: float = Field(500.0, gt=0, description="LFP band-pass high edge, in Hz.")
    lfp_decimation: int = Field(12, ge=1, description="Keep one LFP sample in this many (30 kHz / 12 = 2.5 kHz).")
    stub: bool = Field(False, description="Quick-check mode: write only the first stub_duration_s of any raw or "
                       "LFP series (units are always complete).")
    stub_duration_s: float = Field(10.0, gt=0, description="Length of the raw/LFP series in stub mode, in seconds.")


class PhyExportParams(_Section):
    """A Phy folder per stream, written from the SortingAnalyzer for the units that survived curation."""

    enabled: bool = Field(False, description="Write phy/<stream>/ during `spikeline run`.")
    compute_pc_features: bool = Field(True, description="Write PC features (Phy's feature view, PC metrics).")
    copy_binary: bool = Field(False, description="Copy the preprocessed traces into the Phy folder; otherwise "
                              "params.py points at the preprocessed binary by absolute path.")


class ExportParams(_Section):
    """Exports that let results travel: NWB (DANDI), Phy, and the session metadata they share."""

    metadata_file: Path | None = Field(
        None, description="YAML or JSON file with subject and session metadata (subject_id, species, sex, age, "
        "session_start_time, experimenter, institution ...).",
    )
    nwb: NwbExportParams = Field(default_factory=NwbExportParams)
    phy: PhyExportParams = Field(default_factory=PhyExportParams)


class PipelineConfig(_Section):
    """The whole configuration; every section has defaults."""

    job: JobParams = Field(default_factory=JobParams)
    preprocessing: PreprocessingParams = Field(default_factory=PreprocessingParams)
    spikesorting: SpikeSortingParams = Field(default_factory=SpikeSortingParams)
    postprocessing: PostprocessingParams = Field(default_factory=PostprocessingParams)
    curation: CurationParams = Field(default_factory=CurationParams)
    export: ExportParams = Field(default_factory=ExportParams)

    def step_params(self, section: str) -> dict[str, Any]:
        """The resolved parameters of one section, as plain JSON-able data (what provenance records)."""
        return getattr(self, section).model_dump(mode="json")


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """Follow a pydantic error location through nested models; None where it leaves them."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return None
    return model


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "<top level>"
        if err["type"] == "extra_forbidden":
            parent = _model_at(PipelineConfig, loc[:-1])
            valid = sorted(parent.model_fields) if parent is not None else []
            lines.append(f"unknown key '{key}'. Valid keys here are: {valid}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{key}: {msg} (got {err.get('input')!r})")
    return "invalid configuration:\n  - " + "\n  - ".join(lines)


def deep_merge(base: dict, override: dict) -> dict:
    """Merge ``override`` into a copy of ``base``; nested dicts merge, other values replace."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def build_config(data: dict[str, Any] | None = None) -> PipelineConfig:
    """Validate a configuration dictionary.

    Parameters
    ----------
    data : dict | None
        Sections and keys to set; missing ones take their defaults.

    Returns
    -------
    PipelineConfig

    Raises
    ------
    ConfigError
        On an unknown key, a wrong type or an out-of-range value.
    """
    try:
        return PipelineConfig.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read a YAML configuration file and apply overrides (e.g. from CLI flags).

    Parameters
    ----------
    path : str | Path | None
        YAML file with any of the sections ``job``, ``preprocessing``, ``spikesorting``, ``postprocessing``,
        ``curation``; ``None`` uses defaults only.
    overrides : dict | None
        Nested values that take precedence over the file.

    Returns
    -------
    PipelineConfig

    Raises
    ------
    ConfigError
        If the file cannot be read or parsed, or its content is invalid.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"configuration file {path} must hold a mapping of sections, not {type(data).__name__}")
    return build_config(deep_merge(data, overrides or {}))
