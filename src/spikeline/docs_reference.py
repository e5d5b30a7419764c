"""Reference pages generated from the code, so the documentation never restates a default by hand.

The documentation site (``mkdocs.yml``) loads this module as a MkDocs hook:

* :func:`on_files` adds ``reference/configuration.md`` (every configuration key: type, default, allowed
  values, description, from the pydantic models of :mod:`spikeline.config`, plus the AIND argument strings
  of :mod:`spikeline.aind_args` and the QC thresholds of the installed SpikeInterface) and
  ``reference/cli.md`` (every command's ``--help``, from :mod:`spikeline.cli`).
* :func:`on_page_markdown` replaces a ``<!-- generated: NAME -->`` line in any page with the table
  :data:`SNIPPETS` makes for ``NAME`` (for example the default QC thresholds on the outputs page).

The functions that build the text are plain and can be called without MkDocs (``python -m
spikeline.docs_reference`` prints the configuration reference).
"""

from __future__ import annotations

import json
import re
import shlex
import types
import typing
from typing import Any, Callable, Literal

from pydantic import BaseModel

CONFIGURATION_PAGE = "reference/configuration.md"
CLI_PAGE = "reference/cli.md"
_MARKER = re.compile(r"<!-- generated: ([a-z0-9_-]+) -->")


def _dynamic_choices() -> dict[str, Callable[[], list[str]]]:
    """Keys whose valid values come from the installed libraries (checked by validators, not by types)."""

    def motion_presets() -> list[str]:
        from spikeinterface.preprocessing import get_motion_presets

        return [p for p in get_motion_presets() if p]

    def merge_presets() -> list[str]:
        from spikeinterface.curation.auto_merge import _compute_merge_presets

        return sorted(_compute_merge_presets)

    def extensions() -> list[str]:
        from spikeinterface.core.sortinganalyzer import _builtin_extensions

        return sorted(_builtin_extensions)

    return {"preprocessing.motion_preset": motion_presets,
            "curation.merge_suggestions.preset": merge_presets,
            "postprocessing.extensions": extensions}


def _type_name(annotation: Any) -> str:
    """A short, readable name for a field's type."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "str"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(a.__name__ if isinstance(a, type) and issubclass(a, BaseModel) else _type_name(a)
                         for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def _allowed(annotation: Any, metadata: list, dotted: str) -> str:
    """Allowed values from a Literal type, numeric constraints or the installed libraries."""
    parts = []
    literal = [a for a in (annotation, *typing.get_args(annotation)) if typing.get_origin(a) is Literal]
    for lit in literal:
        parts.append(", ".join(f"`{v}`" for v in typing.get_args(lit)))
    symbols = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    for item in metadata:
        for attr, symbol in symbols.items():
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    dynamic = _dynamic_choices().get(dotted)
    if dynamic is not None:
        parts.append("installed: " + ", ".join(f"`{v}`" for v in dynamic()))
    return "; ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "(section)"
    text = json.dumps(value, ensure_ascii=False)
    return f"`{_cell(text)}`"


def _sections(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type[BaseModel]]]:
    """``(dotted name, model)`` of ``model`` and every nested section, depth first."""
    found = [(prefix, model)]
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and name != "default_qc":
            found += _sections(annotation, f"{prefix}.{name}" if prefix else name)
    return found


def _value_at(data: dict[str, Any], dotted: str) -> Any:
    for part in filter(None, dotted.split(".")):
        data = data[part]
    return data


def configuration_table(model: type[BaseModel], prefix: str, defaults: dict[str, Any]) -> str:
    """A Markdown table of one section's own fields (nested sections get their own table).

    Parameters
    ----------
    model : type[BaseModel]
        The section's pydantic model.
    prefix : str
        Its dotted location in the configuration ('' for the top level).
    defaults : dict
        The whole default configuration as JSON-able data.

    Returns
    -------
    str
    """
    rows = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    section_defaults = _value_at(defaults, prefix)
    for name, field in model.model_fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            anchor = dotted.replace(".", "")
            rows.append(f"| `{name}` | section | | | {_cell(field.description or '')} See [`{dotted}`](#{anchor}). |")
            continue
        rows.append(f"| `{name}` | {_cell(_type_name(annotation))} | {_default(section_defaults[name])} | "
                    f"{_allowed(annotation, field.metadata, dotted)} | {_cell(field.description or '')} |")
    return "\n".join(rows)


def aind_mapping_rows() -> list[tuple[str, str]]:
    """``(AIND argument string, spikeline keys it sets)``, found by passing each option to the real parser.

    Every option of :mod:`spikeline.aind_args`' parsers is given a sample value and run through
    :func:`spikeline.aind_args.aind_overrides`; the resulting configuration overrides are what the table shows,
    so the table cannot disagree with the code.
    """
    from spikeline import aind_args

    parsers = {"preprocessing_args": aind_args._preprocessing_parser(),
               "spikesort_args": aind_args._spikesort_parser(),
               "job_dispatch_args": aind_args._job_dispatch_parser()}
    samples = {"max_bad_channel_fraction": "0.25", "motion_temporal_bin_s": "2.0", "min_drift_channels": "64",
               "debug_duration": "60", "min_recording_duration": "120", "motion_preset": "dredge"}
    rows = []
    for argument, parser in parsers.items():
        for action in parser._actions:
            option = next((o for o in action.option_strings if o.startswith("--")), None)
            if option is None or option == "--help":
                continue
            if action.nargs == 0:
                tokens = [option]
            elif action.choices:
                tokens = [option, list(action.choices)[-1]]
            else:
                tokens = [option, samples[action.dest]]
            overrides = aind_args.aind_overrides(**{argument: shlex.join(tokens)})
            keys = [f"`{section}.{key}: {json.dumps(value)}`" for section, values in overrides.items()
                    for key, value in values.items()]
            rows.append((f'`--{argument} "{shlex.join(tokens)}"`',
                         ", ".join(keys) or "accepted, changes nothing (spikeline always handles many sessions)"))
    return rows


def aind_mapping_table() -> str:
    """The AIND argument strings as a Markdown table (see :func:`aind_mapping_rows`)."""
    lines = ["| AIND pipeline argument (example value) | spikeline configuration it sets |", "|---|---|"]
    lines += [f"| {_cell(arg)} | {_cell(keys)} |" for arg, keys in aind_mapping_rows()]
    return "\n".join(lines)


def default_qc_table() -> str:
    """The default ``default_qc`` thresholds (strict; NaN fails), from the configuration model."""
    from spikeline.config import PipelineConfig

    lines = ["| metric column | passes when |", "|---|---|"]
    for metric, threshold in PipelineConfig().curation.default_qc.items():
        bounds = [f"> {threshold.greater}" if threshold.greater is not None else "",
                  f"< {threshold.less}" if threshold.less is not None else ""]
        lines.append(f"| `{metric}` | {' and '.join(b for b in bounds if b)} |")
    return "\n".join(lines)


def bombcell_table() -> str:
    """Bombcell's default thresholds as the installed SpikeInterface defines them (inclusive bounds)."""
    from spikeinterface.curation import bombcell_get_default_thresholds

    lines = ["| section | metric column | passes when |", "|---|---|---|"]
    for section, metrics in bombcell_get_default_thresholds().items():
        for metric, bounds in metrics.items():
            value = "|x|" if bounds.get("abs") else "x"
            parts = [f"{value} ≥ {bounds['greater']}" if bounds.get("greater") is not None else "",
                     f"{value} ≤ {bounds['less']}" if bounds.get("less") is not None else ""]
            lines.append(f"| `{section}` | `{metric}` | {_cell(' and '.join(p for p in parts if p))} |")
    return "\n".join(lines)


def fast_mode_text() -> str:
    """What ``runmode: fast`` turns off."""
    from spikeline.config import FAST_MODE_MISSING_METRICS, FAST_MODE_SKIPPED_EXTENSIONS

    return (f"`runmode: fast` sets `preprocessing.motion: skip`, drops the analyzer extensions "
            f"{', '.join(f'`{e}`' for e in FAST_MODE_SKIPPED_EXTENSIONS)} and turns off the bombcell thresholds on "
            f"the metrics they produce ({', '.join(f'`{m}`' for m in FAST_MODE_MISSING_METRICS)}).")


def configuration_reference() -> str:
    """The whole configuration reference page (Markdown)."""
    from spikeline.config import PipelineConfig

    defaults = PipelineConfig().model_dump(mode="json")
    out = [
        "# Configuration reference",
        "",
        "Generated at build time from the configuration models in `src/spikeline/config.py` and the AIND argument "
        "parsers in `src/spikeline/aind_args.py`; edit the code, not this page. Every key has a default. A YAML file "
        "(`--config FILE`) sets any of them, command-line flags override the file, and `spikeline config show` prints "
        "the resolved result. See [the pipeline page](../pipeline.md#configuration) for how the file is read and "
        "checked.",
        "",
        "Keys whose description names a SpikeInterface function take that function's own argument names (a mapping "
        "of name to value); the names are checked against the installed library before any work starts.",
        "",
    ]
    for dotted, model in _sections(PipelineConfig):
        title = dotted or "top level"
        out += [f"## `{title}`" if dotted else "## Top level", "", (model.__doc__ or "").strip().split("\n\n")[0],
                "", configuration_table(model, dotted, defaults), ""]
    out += ["## Fast mode", "", fast_mode_text(), "",
            "## Default QC thresholds (`curation.default_qc`)", "",
            "A unit is flagged `default_qc = True` when every threshold holds (strict comparisons; a NaN metric fails).",
            "", default_qc_table(), "",
            "## Bombcell thresholds (`curation.bombcell.thresholds`)", "",
            "The installed SpikeInterface's `bombcell_get_default_thresholds()`; bounds are inclusive. "
            "`curation.bombcell.thresholds` overrides single bounds (`null` turns a bound off).", "",
            bombcell_table(), "",
            "## AIND pipeline argument strings", "",
            "`spikeline run` (and `spikeline config show`) accept the AIND pipeline's per-step argument strings "
            "as they are. Each row was produced by passing the argument to spikeline's parser; an option not listed "
            "is an error that lists the understood ones. Plain flags (`--sorter`, `--n-jobs`, ...) win over these "
            "strings, and both win over the configuration file.", "",
            aind_mapping_table(), ""]
    return "\n".join(out)


def _click_help(command, names: list[str]) -> list[str]:
    import click

    with click.Context(command, info_name=" ".join(names), terminal_width=100, max_content_width=100,
                       help_option_names=["-h", "--help"]) as ctx:
        text = command.get_help(ctx)
    out = [f"## `{' '.join(names)}`", "", "```text", text, "```", ""]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            out += _click_help(command.get_command(ctx, name), [*names, name])
    return out


def cli_reference() -> str:
    """Every command's ``--help`` text (Markdown)."""
    from spikeline.cli import main

    return "\n".join(["# Command-line reference", "",
                      "Generated at build time from `src/spikeline/cli.py` (each command's `--help`).", "",
                      *_click_help(main, ["spikeline"])])


#: Tables a page can include with a ``<!-- generated: NAME -->`` line.
SNIPPETS: dict[str, Callable[[], str]] = {
    "default-qc": default_qc_table,
    "bombcell-thresholds": bombcell_table,
    "aind-arguments": aind_mapping_table,
    "fast-mode": fast_mode_text,
}


def expand_markers(markdown: str) -> str:
    """Replace every ``<!-- generated: NAME -->`` line with the text of ``SNIPPETS[NAME]``.

    Raises
    ------
    KeyError
        For an unknown name (a strict build then fails).
    """
    return _MARKER.sub(lambda m: SNIPPETS[m.group(1)](), markdown)


# ---- MkDocs hook interface (mkdocs.yml: hooks: [src/spikeline/docs_reference.py]) ----

def on_files(files, config):
    """Add the generated reference pages to the site."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, CONFIGURATION_PAGE, content=configuration_reference()))
    files.append(File.generated(config, CLI_PAGE, content=cli_reference()))
    return files


def on_page_markdown(markdown, page, config, files):
    """Expand the ``<!-- generated: NAME -->`` markers of a page."""
    return expand_markers(markdown)


if __name__ == "__main__":  # pragma: no cover
    print(configuration_reference())
