"""The documentation site: it builds strictly, its generated reference covers the code, its configuration examples
are valid, and every tutorial command marked ``<!-- test: run -->`` runs, in order, on synthetic data.

The tutorials share one working folder and one pipeline run (tutorial 1 sorts, the others reuse it), so the whole
module costs about one small Kilosort 4 run plus a few seconds per command.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from spikeline import docs_reference
from spikeline.config import PipelineConfig, build_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
STREAM = "block0_imec0.ap_recording1"
RUN_MARK = "<!-- test: run -->"
#: A fenced bash block and the line before it (a marker comment, or anything else).
_BASH_BLOCK = re.compile(r"(?:^(?P<mark><!--[^\n]*-->)\n)?^```bash\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
_YAML_BLOCK = re.compile(r"^```yaml\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)


def _env() -> dict[str, str]:
    """The test's environment, with this interpreter's scripts (``spikeline``, ``python``) first on PATH."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def tutorial_pages() -> list[Path]:
    """The tutorial pages in the site's navigation order."""
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    (section,) = [item["Tutorials"] for item in nav if isinstance(item, dict) and "Tutorials" in item]
    return [DOCS / (entry if isinstance(entry, str) else next(iter(entry.values()))) for entry in section]


def bash_blocks(page: Path) -> list[tuple[str | None, str]]:
    """``(marker comment or None, code)`` of every fenced bash block of a page."""
    return [(m["mark"], m["code"]) for m in _BASH_BLOCK.finditer(page.read_text())]


def test_site_builds_strictly(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    reference = (site / "reference" / "configuration.html").read_text()
    assert "max_bad_channel_fraction" in reference and "--skip-motion-correction" in reference
    assert "spikeline run" in (site / "reference" / "cli.html").read_text()
    outputs = (site / "outputs.html").read_text()
    assert "generated:" not in outputs and "isi_violations_ratio" in outputs
    assert "fonts.googleapis" not in (site / "index.html").read_text()


def test_reference_covers_every_configuration_key():
    text = docs_reference.configuration_reference()
    for dotted, model in docs_reference._sections(PipelineConfig):
        for name, field in model.model_fields.items():
            assert f"| `{name}` |" in text, f"{dotted}.{name} missing from the reference"
            assert field.description, f"{dotted}.{name} has no description in config.py"


def test_aind_table_is_the_parser():
    rows = dict(docs_reference.aind_mapping_rows())
    assert rows['`--spikesort_args "--skip-motion-correction"`'] == "`spikesorting.skip_motion_correction: true`"
    assert rows['`--preprocessing_args "--denoising destripe"`'] == '`preprocessing.denoising: "destripe"`'
    assert len(rows) == 19
    with pytest.raises(KeyError):
        docs_reference.expand_markers("<!-- generated: no-such-table -->")


def test_every_tutorial_block_is_marked():
    for page in tutorial_pages():
        for mark, code in bash_blocks(page):
            assert mark is not None and (mark == RUN_MARK or mark.startswith("<!-- not run in CI:")), (
                f"{page.name}: mark this bash block '{RUN_MARK}' or '<!-- not run in CI: why -->':\n{code}")


def test_configuration_examples_are_valid():
    """Every YAML block of the docs that is a configuration (its keys are sections) validates."""
    sections = set(PipelineConfig.model_fields)
    checked = 0
    for page in sorted(DOCS.rglob("*.md")):
        for match in _YAML_BLOCK.finditer(page.read_text()):
            data = yaml.safe_load(match["code"])
            if isinstance(data, dict) and data and set(data) <= sections:
                build_config(data)
                checked += 1
    assert checked >= 5


@pytest.fixture(scope="module")
def tutorial_run(tmp_path_factory):
    """Run every ``<!-- test: run -->`` block of the tutorials in order, in one working folder.

    Each block runs in its own ``bash -e -o pipefail`` from the folder the previous block ended in (so a ``cd``
    carries over, as in a terminal). Stops at the first failing block.
    """
    cwd = tmp_path_factory.mktemp("tutorials")
    state = cwd / ".tutorial_cwd"
    results = []
    for page in tutorial_pages():
        for mark, code in bash_blocks(page):
            if mark != RUN_MARK:
                continue
            script = f"set -eo pipefail\ncd {str(cwd)!r}\n{code}\npwd > {str(state)!r}\n"
            t0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(["bash", "-c", script], env=_env(), capture_output=True, text=True, timeout=1200)
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            results.append({"page": page.name, "code": code, "returncode": done.returncode,
                            "output": done.stdout + done.stderr, "seconds": round(time.perf_counter() - t0, 1),
                            "cpu_seconds": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1)})
            if done.returncode != 0:
                return cwd, results
            cwd = Path(state.read_text().strip())
    return cwd, results


def test_tutorial_commands_run(tutorial_run):
    cwd, results = tutorial_run
    failed = [r for r in results if r["returncode"] != 0]
    assert not failed, f"{failed[0]['page']}: block failed:\n{failed[0]['code']}\n--- output ---\n{failed[0]['output'][-6000:]}"
    assert len(results) >= 12
    print(json.dumps([{k: r[k] for k in ("page", "seconds", "cpu_seconds")} for r in results], indent=1))


def test_tutorial_outputs(tutorial_run):
    cwd, results = tutorial_run
    assert all(r["returncode"] == 0 for r in results)
    assert cwd.name == "spikeline-tutorial"
    session = cwd / "results" / "synthetic_g0"
    assert (session / "curated" / STREAM / "unit_labels.csv").is_file()
    assert list((session / "nwb").glob("*/*.nwb"))
    assert (session / "curated_manual" / STREAM / "manual_curation.json").is_file()
    assert (cwd / "manual_curation.json").is_file()
    sort = json.loads((session / "provenance" / STREAM / "sort.json").read_text())
    assert sort["outputs"]["drift_correction_off_reason"] == "skip_motion_correction is set"
    lab = sorted(p.name for p in (cwd / "lab_results").iterdir() if (p / "processing.json").is_file())
    assert lab == ["mouse1_day1_synthetic_g0", "mouse2_day1_synthetic_g0"]
    web = next(r for r in results if "spikeline view" in r["code"])
    assert "MUA -> SUA" in web["output"] and " fails " in web["output"]


def _source_pieces() -> list[str]:
    """The literal text of every string in spikeline's source, cut where a value is formatted into it."""
    import ast

    pieces = []
    for path in (ROOT / "src" / "spikeline").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                pieces += re.split(r"%[-.\d]*[sdfr]", node.value)
            elif isinstance(node, ast.JoinedStr):
                pieces += [v.value for v in node.values if isinstance(v, ast.Constant)]
    return pieces


def test_troubleshooting_messages_are_spikelines():
    """The messages quoted on the troubleshooting page are the ones the code prints (no invented text).

    Each quoted message is cut at its placeholders (``<path>``, ``[...]``, ``{...}``) and punctuation; every piece
    of 20 characters or more must occur in one string of the source.
    """
    from spikeline.formats.aind import CLIPPED, COMPRESSED

    page = (DOCS / "troubleshooting.md").read_text()
    for constant in (CLIPPED, COMPRESSED):  # folder names formatted into a message
        page = page.replace(str(constant), "<folder>")
    corpus = "\x00".join(_source_pieces())
    checked = 0
    for block in re.findall(r"^```text\n(.*?)^```$", page, re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            line = line.strip().removeprefix("Error: ")
            if not line or line.startswith(("slurmstepd", "reason:")):
                continue
            for piece in re.split(r"<[^>]+>|\[\.\.\.\]|\{\.\.\.\}|[()\[\]']|: |, ", line):
                piece = piece.strip(" .;-")
                if len(piece) >= 20:
                    assert piece in corpus, f"not a spikeline message: {piece!r}\n(from: {line})"
                    checked += 1
    assert checked >= 20
