"""Exports on a tiny two-probe session (2 x 16 channels, 10 s, SpyKING CIRCUS 2): NWB checked with the community's own
validators (nwbinspector with the DANDI config, pynwb.validate) and read back with pynwb; Phy read back with
SpikeInterface's reader; processing.json and data_description.json validated against the shipped schemas."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from conftest import make_read_only, quiet_config, tree_checksums
from spikeline.cli import main
from spikeline.errors import ConfigError
from spikeline.layout import ResultsLayout
from spikeline.metadata import SessionMetadata, missing_for_dandi
from spikeline.pipeline import run_pipeline
from spikeline.provenance import read_json, schema
from spikeline.synthetic import make_spikeglx_session

STREAMS = ["block0_imec0.ap_recording1", "block0_imec1.ap_recording1"]
STREAM = STREAMS[0]
GROUP = "block0_recording1"
METADATA = {
    "subject": {"subject_id": "M1", "species": "Mus musculus", "sex": "M", "age": "P90D",
                "description": "synthetic ground-truth mouse"},
    "session": {"session_start_time": "2026-01-01T12:00:00+01:00", "session_description": "synthetic session",
                "experiment_description": "spikeline export test", "experimenter": ["Doe, Jane"],
                "institution": "Example University", "lab": "Example Lab", "keywords": ["synthetic"]},
    "probes": {"imec0": {"location": "CA1"}, "imec1": {"location": "VISp"}},
}
INPUT_PROCESSING = {"schema_version": "2.0.0", "data_processes": [{"name": "Acquisition", "notes": "from rig"}]}
INPUT_DESCRIPTION = {"name": "synthetic_g0", "subject_id": "M1", "data_level": "raw", "project_name": "demo"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The pipeline run once with Phy and NWB on; the input folder holds processing/data_description JSONs."""
    root = tmp_path_factory.mktemp("exports")
    session = make_spikeglx_session(root, num_probes=2, num_channels=16, duration_s=10.0, num_units=5, seed=3)
    (session.data_dir / "processing.json").write_text(json.dumps(INPUT_PROCESSING))
    (session.data_dir / "data_description.json").write_text(json.dumps(INPUT_DESCRIPTION))
    make_read_only(session.data_dir)
    checksums = tree_checksums(session.data_dir)
    metadata_file = root / "session.yaml"
    metadata_file.write_text(yaml.safe_dump(METADATA))
    config = quiet_config(spikesorting={"sorter": "spykingcircus2"},
                          export={"metadata_file": str(metadata_file), "phy": {"enabled": True}})
    summary = run_pipeline(session.data_dir, root / "results", config)
    assert summary.ok, summary
    return session, ResultsLayout(root / "results"), metadata_file, checksums


def _nwb_path(layout):
    return ResultsLayout(layout.root).nwb_file("synthetic_g0", GROUP)


def test_nwb_passes_nwbinspector_dandi_and_pynwb_validate(exported):
    import pynwb
    from nwbinspector import Importance, inspect_nwbfile, load_config

    _, layout, _, _ = exported
    path = _nwb_path(layout)
    assert path.exists()
    messages = list(inspect_nwbfile(nwbfile_path=path, config=load_config("dandi")))
    serious = [m for m in messages if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION)]
    assert not serious, [f"{m.importance.name} {m.check_function_name}: {m.message}" for m in serious]
    assert not [m for m in messages if m.importance == Importance.ERROR]
    assert list(pynwb.validate(path=str(path))) == []


def test_nwb_units_match_the_curated_sorting(exported):
    import pynwb
    import spikeinterface as si

    _, layout, _, _ = exported
    curated = {s.split("_")[1].split(".")[0]: si.load(layout.step_output("curate", s)) for s in STREAMS}
    with pynwb.NWBHDF5IO(_nwb_path(layout), "r") as io:
        nwbfile = io.read()
        units = nwbfile.units
        names = list(units["unit_name"][:])
        assert names == [f"{probe}_{u}" for probe, sorting in curated.items() for u in sorting.unit_ids]
        counts = [len(units.get_unit_spike_times(i)) for i in range(len(units))]
        assert counts == [sorting.count_num_spikes_per_unit()[u] for sorting in curated.values()
                          for u in sorting.unit_ids]
        first = curated["imec0"]
        np.testing.assert_allclose(units.get_unit_spike_times(0),
                                   first.get_unit_spike_train(first.unit_ids[0], return_times=True))
        for key in first.get_property_keys():  # every label and metric, each with a real description
            assert key in units.colnames
            assert units[key].description and units[key].description != "No description."
        assert list(units["default_qc"][:]) == [q for s in curated.values() for q in s.get_property("default_qc")]
        assert units.resolution == pytest.approx(1 / 30000.0)
        assert units["waveform_mean"].data.shape[0] == len(names) and units.waveform_unit == "volts"
        electrodes = nwbfile.electrodes.to_dataframe()
        assert {"rel_x", "rel_y"} <= set(electrodes.columns)
        assert dict(zip(electrodes.group_name, electrodes.location)) == {"imec0": "CA1", "imec1": "VISp"}
        unit_groups = {str(units["electrodes"][i]["group_name"].unique()[0]) for i in range(len(units))}
        assert unit_groups == {"imec0", "imec1"}  # each unit's electrode region lies on its own probe
        assert list(nwbfile.devices) == ["imec0", "imec1"] and list(nwbfile.electrode_groups) == ["imec0", "imec1"]
        assert nwbfile.subject.subject_id == "M1" and nwbfile.experimenter == ("Doe, Jane",)
    record = read_json(layout.step_record("nwb", GROUP))
    assert record["status"] == "ok" and record["streams"] == STREAMS and record["outputs"]["missing_for_dandi"] == []


def test_phy_folder_reads_back_with_spikeinterface(exported):
    import spikeinterface as si
    import spikeinterface.extractors as se

    _, layout, _, _ = exported
    for stream in STREAMS:
        curated = si.load(layout.step_output("curate", stream))
        analyzer = si.load_sorting_analyzer(layout.step_output("postprocess", stream), load_extensions=False)
        phy = se.read_phy(layout.step_output("export_phy", stream), load_all_cluster_properties=True)
        assert list(phy.unit_ids) == list(curated.unit_ids)
        expected = analyzer.sorting.count_num_spikes_per_unit()
        assert phy.count_num_spikes_per_unit() == {u: expected[u] for u in curated.unit_ids}
        assert list(phy.get_property("default_qc")) == list(curated.get_property("default_qc"))
        for column in ("qc_fail_reasons", "isi_violations_ratio", "snr"):
            assert column in phy.get_property_keys()


def test_provenance_files_validate_and_extend_the_input(exported):
    import jsonschema

    session, layout, _, checksums = exported
    processing = read_json(layout.processing_json)
    jsonschema.validate(processing, schema("processing"), format_checker=jsonschema.FormatChecker())
    assert processing["data_processes"][0] == INPUT_PROCESSING["data_processes"][0]
    ours = [(p["name"], p["stream"]) for p in processing["data_processes"][1:]]
    assert ours == [(step, stream) for stream in STREAMS
                    for step in ("preprocess", "sort", "postprocess", "curate", "visualize", "export_phy")] + [("nwb", GROUP)]
    assert all(p["status"] == "ok" and p["versions"]["spikeinterface"] for p in processing["data_processes"][1:])

    description = read_json(layout.data_description_json)
    jsonschema.validate(description, schema("data_description"), format_checker=jsonschema.FormatChecker())
    assert description["project_name"] == "demo" and description["input_data_description"] == INPUT_DESCRIPTION
    assert description["data_level"] == "derived" and description["subject"]["species"] == "Mus musculus"
    assert tree_checksums(session.data_dir) == checksums  # the input folder is never written to


def test_schemas_reject_incomplete_records(exported):
    import jsonschema

    _, layout, _, _ = exported
    processing = read_json(layout.processing_json)
    del processing["data_processes"][1]["versions"]
    with pytest.raises(jsonschema.ValidationError, match="versions"):
        jsonschema.validate(processing, schema("processing"))


def test_cli_exports_reuse_and_write_elsewhere(exported, tmp_path):
    import spikeinterface.extractors as se

    _, layout, metadata_file, _ = exported
    runner = CliRunner()
    result = runner.invoke(main, ["export", "nwb", str(layout.root), "--metadata", str(metadata_file)])
    assert result.exit_code == 0, result.output
    assert f"{GROUP}: ok" in result.output and read_json(layout.step_record("nwb", GROUP))["status"] == "ok"
    out = tmp_path / "phy"
    result = runner.invoke(main, ["export", "phy", str(layout.root), "--stream", STREAM, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert se.read_phy(out).get_num_units() == se.read_phy(layout.step_output("export_phy", STREAM)).get_num_units()
    result = runner.invoke(main, ["export", "phy", str(layout.root), "--stream", "nope"])
    assert result.exit_code != 0 and "no stream 'nope'" in result.output


def test_zarr_backend_fails_before_work_with_the_reason(tmp_path):
    from spikeline.steps.nwb import check_backend

    with pytest.raises(ConfigError, match=r"backend 'zarr' cannot be used on this Python.*Use backend 'hdf5'"):
        check_backend("zarr")
    config_file = _write(tmp_path / "c.yaml", {"export": {"nwb": {"backend": "zarr"}}})
    result = CliRunner().invoke(main, ["run", str(tmp_path / "data"), "--results", str(tmp_path / "r"),
                                       "--config", str(config_file)])
    assert result.exit_code != 0 and "backend 'zarr' cannot be used on this Python" in result.output
    assert not (tmp_path / "r").exists()  # refused before any work


def _write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_missing_metadata_names_what_dandi_will_ask_for():
    missing = missing_for_dandi(SessionMetadata(), ["imec0"])
    assert missing == ["subject.subject_id", "subject.species", "subject.sex", "subject.age or subject.date_of_birth",
                       "session.session_start_time", "session.session_description", "session.experimenter",
                       "session.institution", "probes.imec0.location"]


def test_unknown_export_key_lists_valid_keys():
    from spikeline.config import build_config

    with pytest.raises(ConfigError, match=r"unknown key 'export.nwb.raw'.*'write_lfp', 'write_raw'"):
        build_config({"export": {"nwb": {"raw": True}}})


@pytest.mark.slow
def test_nwb_with_raw_and_lfp_stub_validates(exported, tmp_path):
    import pynwb
    from nwbinspector import Importance, inspect_nwbfile, load_config

    _, layout, metadata_file, _ = exported
    result = CliRunner().invoke(main, ["export", "nwb", str(layout.root), "--metadata", str(metadata_file),
                                       "--write-raw", "--write-lfp", "--stub", "--stub-duration-s", "2"])
    assert result.exit_code == 0, result.output
    path = _nwb_path(layout)
    messages = list(inspect_nwbfile(nwbfile_path=path, config=load_config("dandi")))
    assert not [m for m in messages if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION)]
    assert list(pynwb.validate(path=str(path))) == []
    with pynwb.NWBHDF5IO(path, "r") as io:
        nwbfile = io.read()
        raw = nwbfile.acquisition["ElectricalSeriesRawimec0"]
        assert raw.data.shape == (60000, 16) and "ElectricalSeriesRawimec1" in nwbfile.acquisition
        lfp = nwbfile.processing["ecephys"]["LFP"]["ElectricalSeriesLFPimec0"]
        assert lfp.data.shape == (5000, 16)
