"""Configuration: defaults, and every invalid value rejected before work with a message naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from spikeline.cli import main
from spikeline.config import build_config, load_config
from spikeline.errors import ConfigError
from spikeline.pipeline import run_pipeline


def test_defaults_match_the_aind_pipeline():
    config = build_config()
    assert config.spikesorting.sorter == "kilosort4"
    assert config.spikesorting.min_drift_channels == 96
    assert config.preprocessing.common_reference == {"reference": "global", "operator": "median"}
    assert config.preprocessing.highpass_filter["freq_min"] == 300.0
    assert config.preprocessing.detect_bad_channels["method"] == "coherence+psd"
    qc = {k: v.model_dump() for k, v in config.curation.default_qc.items()}
    assert qc == {
        "isi_violations_ratio": {"less": 0.5, "greater": None},
        "presence_ratio": {"less": None, "greater": 0.8},
        "amplitude_cutoff": {"less": 0.1, "greater": None},
    }
    assert config.postprocessing.extensions["waveforms"] == {"ms_before": 2.0, "ms_after": 3.0}


def test_unknown_top_level_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'preprocesing'.*'curation', 'dispatch', 'export', 'job', "
                                          r"'postprocessing'"):
        build_config({"preprocesing": {}})


def test_unknown_nested_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'preprocessing.cmr_operator'.*'common_reference'"):
        build_config({"preprocessing": {"cmr_operator": "average"}})


def test_wrong_type_and_out_of_range_values():
    with pytest.raises(ConfigError, match=r"preprocessing.max_bad_channel_fraction"):
        build_config({"preprocessing": {"max_bad_channel_fraction": 1.5}})
    with pytest.raises(ConfigError, match=r"job.n_jobs"):
        build_config({"job": {"n_jobs": "many"}})
    with pytest.raises(ConfigError, match=r"spikesorting.sorter"):
        build_config({"spikesorting": {"sorter": "kilosort9"}})


def test_spikeinterface_arguments_are_checked_against_the_library():
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) \['operater'\] for preprocessing.common_reference"):
        build_config({"preprocessing": {"common_reference": {"operater": "average"}}})
    with pytest.raises(ConfigError, match=r"unknown extension 'waveformz'"):
        build_config({"postprocessing": {"extensions": {"waveformz": {}}}})


def test_unknown_sorter_parameter_lists_valid_ones():
    config = build_config({"spikesorting": {"sorter_params": {"kilosort4": {"Th_universe": 8}}}})
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['Th_universe'\].*'Th_universal'"):
        config.spikesorting.resolved_sorter_params()


def test_unknown_sorter_parameter_fails_before_any_work(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    results = tmp_path / "results"
    config = build_config({"spikesorting": {"sorter_params": {"kilosort4": {"nblock": 0}}}})
    with pytest.raises(ConfigError, match="nblock"):
        run_pipeline(data, results, config)
    assert not results.exists()


def test_yaml_file_and_cli_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("preprocessing:\n  common_reference:\n    operator: average\n")
    assert load_config(path).preprocessing.common_reference["operator"] == "average"
    assert load_config(path, {"job": {"n_jobs": 1}}).job.n_jobs == 1

    path.write_text("spikesorting:\n  sorter_params:\n    kilosort4:\n      not_a_param: 1\n")
    (tmp_path / "data").mkdir()
    result = CliRunner().invoke(main, ["run", str(tmp_path / "data"), "--results", str(tmp_path / "r"),
                                       "--config", str(path)])
    assert result.exit_code != 0
    assert "not_a_param" in result.output and "Valid kilosort4 parameters are" in result.output

    path.write_text("preprocessing: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_import_is_light():
    code = "import sys, spikeline; bad = [m for m in ('torch', 'kilosort', 'spikeinterface') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
