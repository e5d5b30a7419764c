"""Shared fixtures: synthetic ground-truth SpikeGLX sessions and pipeline runs on them (session-scoped, seeded).

Sizes follow ../shared/reference/measured-here.md: Kilosort4 on CPU takes about 1.5-2x real time on 32 channels
here, so the default tier sorts one 60 s recording (Kilosort4 found only 3-4 of 12 units on 30 s here); the demo-sized case (60 s, 16 units) is marked ``slow``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from spikeline.config import build_config
from spikeline.pipeline import run_pipeline
from spikeline.synthetic import make_spikeglx_session

#: Size of the default-tier ground-truth session.
TEST_DURATION_S = 60.0
TEST_NUM_UNITS = 12
TEST_FIRING_RATE_HZ = 10.0


def quiet_config(**sections):
    """A configuration without progress bars (test logs stay readable)."""
    data = {"job": {"progress_bar": False}}
    data.update(sections)
    return build_config(data)


def tree_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative path to digest)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def make_read_only(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture(scope="session")
def gt_session(tmp_path_factory):
    """A 32-channel NP1.0 SpikeGLX session with known ground truth, read-only, plus checksums of its files."""
    root = tmp_path_factory.mktemp("gt")
    session = make_spikeglx_session(root, duration_s=TEST_DURATION_S, num_units=TEST_NUM_UNITS,
                                    firing_rate_hz=TEST_FIRING_RATE_HZ, seed=42)
    make_read_only(session.data_dir)
    return session, tree_checksums(session.data_dir)


@pytest.fixture(scope="session")
def ks4_run(gt_session, tmp_path_factory):
    """The default pipeline (Kilosort4 on CPU) run once on ``gt_session``."""
    session, _ = gt_session
    results = tmp_path_factory.mktemp("ks4") / "results"
    summary = run_pipeline(session.data_dir, results, quiet_config())
    return session, results, summary


@pytest.fixture
def in_other_directory(tmp_path):
    """Run a test from an unrelated working directory."""
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


@pytest.fixture(scope="session")
def webapp_results_source(tmp_path_factory):
    """A tiny sorted session (16 channels, 10 s, SpyKING CIRCUS 2, motion off) for the web app's tests.

    Tests must copy it (``webapp_results`` fixtures do) before writing curation files.
    """
    root = tmp_path_factory.mktemp("webapp")
    session = make_spikeglx_session(root / "data", num_channels=16, duration_s=10.0, num_units=5, seed=3)
    results = root / "results"
    run_pipeline(session.data_dir, results, quiet_config(spikesorting={"sorter": "spykingcircus2"},
                                                         preprocessing={"motion": "skip"}))
    return results
