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

SORTERS = ("kilosort4", "spykingcircus2", "tridesclous2", "mountainsort5", "lupin", "kilosort25")
#: spikeline sorter name -> SpikeInterface sorter name, where they differ.
SI_SORTER_NAMES = {"kilosort25": "kilosort2_5"}
#: Extensions dropped by ``runmode: fast`` (the slowest; PC metrics go with principal_components).
FAST_MODE_SKIPPED_EXTENSIONS = ("principal_components", "spike_locations")
#: Metric columns those extensions produce: bombcell thresholds on them are disabled in fast mode.
FAST_MODE_MISSING_METRICS = ("drift_ptp", "drift_std", "drift_mad", "isolation_distance", "l_ratio", "d_prime",
                             "nn_hit_rate", "nn_miss_rate", "silhouette")


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


class DispatchParams(_Section):
    """Which inputs become which jobs (AIND job-dispatch names)."""

    input: Literal["auto", "spikeglx", "openephys", "nwb", "aind", "spikeinterface"] = Field(
        "auto", description="Input format; 'auto' finds every supported format under the data folder."
    )
    split_segments: bool = Field(
        True, description="One job per segment (gate/trigger, recording); otherwise segments are concatenated."
    )
    split_groups: bool = Field(False, description="One job per channel group (shank) of multi-shank probes.")
    debug: bool = Field(False, description="Clip every stream to debug_duration_s (quick test runs).")
    debug_duration_s: float = Field(30.0, gt=0, description="Length of each stream in debug mode, in seconds.")
    min_duration_s: float = Field(0.0, ge=0, description="Skip streams shorter than this, with a recorded reason.")
    timestamps: Literal["reset", "fail"] = Field(
        "reset", description="Non-monotonic or gapped timestamps: reset them to a regular clock (recorded in the "
        "job) or report the stream as a problem."
    )


class PreprocessingParams(_Section):
    """Phase shift, filtering, bad channels, denoising and motion (the AIND pipeline's options and names)."""

    phase_shift: dict[str, Any] = Field(
        default_factory=lambda: {"margin_ms": 100.0},
        description="spikeinterface.preprocessing.phase_shift arguments; applied when the probe has "
        "inter-sample shifts (Neuropixels).",
    )
    filter_type: Literal["highpass", "bandpass"] = Field("highpass", description="Temporal filter.")
    highpass_filter: dict[str, Any] = Field(
        default_factory=lambda: {"freq_min": 300.0}, description="spikeinterface.preprocessing.highpass_filter arguments."
    )
    bandpass_filter: dict[str, Any] = Field(
        default_factory=lambda: {"freq_min": 300.0, "freq_max": 6000.0},
        description="spikeinterface.preprocessing.bandpass_filter arguments (filter_type: bandpass).",
    )
    detect_bad_channels: dict[str, Any] = Field(
        default_factory=lambda: {"method": "coherence+psd", "seed": 0},
        description="spikeinterface.preprocessing.detect_bad_channels arguments (IBL coherence+psd by default).",
    )
    remove_out_channels: bool = Field(True, description="Remove channels detected outside the brain ('out').")
    remove_bad_channels: bool = Field(True, description="Remove dead and noisy channels.")
    interpolate_bad_channels: bool = Field(
        False, description="Interpolate dead and noisy channels from their neighbours instead of removing them."
    )
    max_bad_channel_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="Skip the stream (with a recorded reason) above this fraction of bad channels."
    )
    denoising: Literal["cmr", "destripe"] = Field(
        "cmr", description="cmr: global common median reference; destripe: IBL highpass spatial filter."
    )
    common_reference: dict[str, Any] = Field(
        default_factory=lambda: {"reference": "global", "operator": "median"},
        description="spikeinterface.preprocessing.common_reference arguments (denoising: cmr).",
    )
    highpass_spatial_filter: dict[str, Any] = Field(
        default_factory=dict,
        description="spikeinterface.preprocessing.highpass_spatial_filter arguments (denoising: destripe).",
    )
    motion: Literal["skip", "compute", "apply"] = Field(
        "compute", description="skip; compute (estimate and save, do not apply); apply (estimate, save and correct)."
    )
    motion_preset: str = Field("dredge_fast", description="A motion preset of the installed SpikeInterface.")
    motion_temporal_bin_s: float = Field(1.0, gt=0, description="Time bin of the motion estimate, in seconds.")
    motion_window_fraction: float = Field(
        0.1, gt=0, le=1, description="Non-rigid window step and scale, as a fraction of the probe's span."
    )

    @field_validator("motion_preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        from spikeinterface.preprocessing import get_motion_presets

        presets = [p for p in get_motion_presets() if p]
        if value not in presets:
            raise ValueError(f"unknown motion preset '{value}'; the installed SpikeInterface offers: {presets}")
        return value

    @model_validator(mode="after")
    def _check_passthrough(self) -> "PreprocessingParams":
        import spikeinterface.preprocessing as spre

        for name in ("phase_shift", "highpass_filter", "bandpass_filter", "detect_bad_channels", "common_reference",
                     "highpass_spatial_filter"):
            _check_kwargs(f"preprocessing.{name}", getattr(spre, name), getattr(self, name))
        return self


class SpikeSortingParams(_Section):
    """Which sorter runs and with which parameter overrides."""

    sorter: Literal["kilosort4", "spykingcircus2", "tridesclous2", "mountainsort5", "lupin", "kilosort25"] = Field(
        "kilosort4", description="Spike sorter (run through SpikeInterface)."
    )
    skip_motion_correction: bool = Field(False, description="Turn the sorter's own drift correction off.")
    min_drift_channels: int = Field(
        96, ge=0, description="Below this channel count the sorter's own drift correction is turned off (as in AIND)."
    )
    sorter_params: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"kilosort4": {}, "spykingcircus2": {"apply_preprocessing": False}},
        description="Per-sorter overrides of SpikeInterface's sorter parameters; names are checked against the "
        "installed sorter.",
    )
    container_image: str | None = Field(
        None, description="For kilosort25 without a local MATLAB install: a local Docker image name or Apptainer/"
        "Singularity .sif file with Kilosort2.5 compiled (used with SpikeInterface's container support).",
    )

    @field_validator("sorter_params")
    @classmethod
    def _known_sorters(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = sorted(set(value) - set(SORTERS))
        if unknown:
            raise ValueError(f"unknown sorter(s) {unknown}; valid sorters are: {list(SORTERS)}")
        return value

    @property
    def si_sorter_name(self) -> str:
        """SpikeInterface's name of the selected sorter."""
        return SI_SORTER_NAMES.get(self.sorter, self.sorter)

    def container_runtime(self) -> dict[str, Any]:
        """``run_sorter`` container arguments for ``container_image`` (empty without one)."""
        import shutil

        if not self.container_image:
            return {}
        if self.container_image.endswith(".sif"):
            runtime = shutil.which("apptainer") or shutil.which("singularity")
            return {"singularity_image": self.container_image} if runtime else {}
        return {"docker_image": self.container_image} if shutil.which("docker") else {}

    def check_available(self) -> None:
        """Fail before any work when the selected sorter cannot run here, saying what to install.

        Raises
        ------
        ConfigError
        """
        import spikeinterface.sorters as ss

        if self.si_sorter_name in ss.installed_sorters() or self.container_runtime():
            return
        if self.sorter == "kilosort25":
            raise ConfigError(
                "kilosort25 needs MATLAB with Kilosort 2.5 (set KILOSORT2_5_PATH; SpikeInterface checks it) or a "
                "container: set spikesorting.container_image to a local Docker image or Apptainer .sif with "
                "Kilosort2.5 compiled. Neither is available on this machine. Kilosort4 (the default) needs no MATLAB."
            )
        hint = {"kilosort4": "run `pip install torch==2.13.0` (CPU) then `pip install 'spikeline[kilosort4]'`",
                "mountainsort5": "run `pip install mountainsort5`"}.get(self.sorter, "install it")
        raise ConfigError(f"sorter '{self.sorter}' is not installed in this environment ({hint}). Installed sorters: "
                          f"{sorted(ss.installed_sorters())}.")

    def resolved_sorter_params(self) -> dict[str, Any]:
        """Overrides for the selected sorter, checked against its parameter names in SpikeInterface.

        Returns
        -------
        dict
            Only the overrides (SpikeInterface fills the rest from its own defaults).

        Raises
        ------
        ConfigError
            If the sorter cannot run here or a parameter name is unknown.
        """
        import spikeinterface.sorters as ss

        self.check_available()
        overrides = copy.deepcopy(self.sorter_params.get(self.sorter, {}))
        valid = ss.get_default_sorter_params(self.si_sorter_name)
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
        "spike_locations": {"method": "grid_convolution"},  # drift metrics (bombcell's drift_ptp) need it
        "correlograms": {"window_ms": 50.0, "bin_ms": 1.0},
        "isi_histograms": {"window_ms": 100.0, "bin_ms": 5.0},
        "amplitude_scalings": {},
        "template_similarity": {"method": "l1"},
        "principal_components": {"n_components": 5, "mode": "by_channel_local", "whiten": True},
        "quality_metrics": {},
        "template_metrics": {"include_multi_channel_metrics": True},  # exp_decay, a bombcell noise metric
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


BOMBCELL_SECTIONS = ("noise", "mua", "non-somatic")
BOMBCELL_THRESHOLD_KEYS = ("greater", "less", "abs")


def metric_columns() -> list[str]:
    """Every quality- and template-metric column the installed SpikeInterface can compute."""
    from spikeinterface.metrics import ComputeQualityMetrics, ComputeTemplateMetrics

    return [*ComputeQualityMetrics.get_metric_columns(), *ComputeTemplateMetrics.get_metric_columns()]


class BombcellParams(_Section):
    """Bombcell labels (``noise`` / ``mua`` / ``good`` / ``non_soma``) from SpikeInterface's ``bombcell_label_units``."""

    enabled: bool = Field(True, description="Label units with bombcell's rules.")
    thresholds: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict,
        description="Overrides of the installed SpikeInterface's bombcell_get_default_thresholds(), per section "
        "(noise, mua, non-somatic) and metric column: {greater, less, abs}; inclusive bounds, null disables a bound.",
    )
    split_non_somatic: bool = Field(False, description="Split non_soma into non_soma_good and non_soma_mua.")

    @field_validator("thresholds")
    @classmethod
    def _known_metrics(cls, value: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
        columns = metric_columns()
        for section, metrics in value.items():
            if section not in BOMBCELL_SECTIONS:
                raise ValueError(f"unknown bombcell section '{section}'; valid sections are: {list(BOMBCELL_SECTIONS)}")
            for metric, bounds in metrics.items():
                if metric not in columns:
                    raise ValueError(f"{section}: unknown metric '{metric}'; valid metric columns are: {columns}")
                unknown = sorted(set(bounds) - set(BOMBCELL_THRESHOLD_KEYS))
                if unknown:
                    raise ValueError(f"{section}.{metric}: unknown key(s) {unknown}; valid keys are: "
                                     f"{list(BOMBCELL_THRESHOLD_KEYS)}")
        return value

    def resolved_thresholds(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The installed library's default thresholds with this section's overrides merged in."""
        from spikeinterface.curation import bombcell_get_default_thresholds

        return deep_merge(bombcell_get_default_thresholds(), self.thresholds)


class MergeSuggestionParams(_Section):
    """Merge suggestions from SpikeInterface's ``compute_merge_unit_groups``; written, never applied."""

    enabled: bool = Field(True, description="Suggest merges among the units not labelled noise.")
    preset: str = Field("slay", description="compute_merge_unit_groups preset.")
    steps_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-step parameter overrides (SpikeInterface names, checked)."
    )

    @model_validator(mode="after")
    def _check_preset_and_steps(self) -> "MergeSuggestionParams":
        # SpikeInterface keeps the presets and step defaults in module tables and silently ignores unknown step
        # parameters, so the names are checked here against those tables.
        from spikeinterface.curation.auto_merge import _compute_merge_presets, _default_step_params

        if self.preset not in _compute_merge_presets:
            raise ValueError(f"unknown merge preset '{self.preset}'; valid presets are: {sorted(_compute_merge_presets)}")
        steps = _compute_merge_presets[self.preset]
        for step, step_params in self.steps_params.items():
            if step not in steps:
                raise ValueError(f"steps_params: step '{step}' is not used by preset '{self.preset}'; its steps are: "
                                 f"{steps}")
            unknown = sorted(set(step_params) - set(_default_step_params[step]))
            if unknown:
                raise ValueError(f"steps_params.{step}: unknown parameter(s) {unknown}; valid parameters are: "
                                 f"{sorted(_default_step_params[step])}")
        return self


class ClassifierParams(_Section):
    """Unit type (``decoder_label``: noise / MUA / SUA): bombcell's rules, or a local model when one is given."""

    model_folder: str | None = Field(
        None, description="A folder written by `spikeline classifier train` (or SpikeInterface's train_model): "
        "its best_model.skops labels units noise / MUA / SUA with a probability. Nothing is downloaded.",
    )
    trust_model: bool = Field(
        True, description="Load the model's skops file without an interactive trust check (only for your own models)."
    )


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
    bombcell: BombcellParams = Field(default_factory=BombcellParams)
    classifier: ClassifierParams = Field(default_factory=ClassifierParams)
    merge_suggestions: MergeSuggestionParams = Field(default_factory=MergeSuggestionParams)
    remove_noise_in_curation: bool = Field(
        True, description="List units labelled noise as 'removed' in curation.json (they stay, flagged, in the "
        "curated sorting).",
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
    """The whole configuration; every section has defaults.

    ``runmode: fast`` skips motion estimation and the slowest analyzer extensions
    (:data:`FAST_MODE_SKIPPED_EXTENSIONS`), as the AIND pipeline's fast mode does.
    """

    runmode: Literal["full", "fast"] = Field("full", description="full, or fast (no motion, no PCA extensions).")
    job: JobParams = Field(default_factory=JobParams)
    dispatch: DispatchParams = Field(default_factory=DispatchParams)
    preprocessing: PreprocessingParams = Field(default_factory=PreprocessingParams)
    spikesorting: SpikeSortingParams = Field(default_factory=SpikeSortingParams)
    postprocessing: PostprocessingParams = Field(default_factory=PostprocessingParams)
    curation: CurationParams = Field(default_factory=CurationParams)
    export: ExportParams = Field(default_factory=ExportParams)

    @model_validator(mode="after")
    def _apply_runmode(self) -> "PipelineConfig":
        if self.runmode == "fast":
            self.preprocessing.motion = "skip"
            for name in FAST_MODE_SKIPPED_EXTENSIONS:
                self.postprocessing.extensions.pop(name, None)
            thresholds = self.curation.bombcell.thresholds
            for section, metrics in self.curation.bombcell.resolved_thresholds().items():
                for metric in set(metrics) & set(FAST_MODE_MISSING_METRICS):
                    thresholds.setdefault(section, {})[metric] = {"greater": None, "less": None}
        return self

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
