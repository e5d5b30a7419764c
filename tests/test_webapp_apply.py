"""Manual curation end to end over HTTP: curator and times in the history, a split, and "Apply" writing the curated
sorting and its NWB file (validated by nwbinspector with the DANDI config and pynwb, units as curated)."""

from __future__ import annotations

import shutil

import pytest
from test_webapp import STREAM, q, request

from spikeline.layout import ResultsLayout
from spikeline.web import ViewerServer


@pytest.fixture(scope="module")
def results(webapp_results_source, tmp_path_factory):
    copy = tmp_path_factory.mktemp("webapp_apply") / "results"
    shutil.copytree(webapp_results_source, copy, symlinks=True)
    return copy


@pytest.fixture(scope="module")
def server(results):
    srv = ViewerServer(results, port=0, curator="Ada Tester").start()
    yield srv
    srv.stop()


def test_split_history_and_apply_with_nwb(server, results):
    import pynwb
    import spikeinterface as si
    from nwbinspector import Importance, inspect_nwbfile, load_config

    layout = ResultsLayout(results)
    automatic = si.load(layout.step_output("curate", STREAM))
    counts = {str(u): int(n) for u, n in automatic.count_num_spikes_per_unit().items()}
    _, state = request(server, "/api/curation", q())
    assert state["curator"] == "Ada Tester" and state["history"] == []
    document = state["curation"]
    units = document["unit_ids"]
    assert len(units) >= 4, "the web app's session should give at least 4 units"
    merged, removed, split = units[:2], units[2], units[3]
    document["merges"] = [{"unit_ids": merged, "new_unit_id": None}]
    document["removed"] = [removed]
    document["manual_labels"] = [{"unit_id": split, "labels": {"quality": ["SUA"]}}]
    status, state = request(server, "/api/curation", q(change="merge, remove, label"), body=document)
    assert status == 200, state

    status, body = request(server, "/api/curation/split", q(unit=str(removed), at_s=5), body={})
    assert status == 400 and "removed or merged" in body["error"]
    status, body = request(server, "/api/curation/split", q(unit=str(split), at_s=1e6), body={})
    assert status == 400 and "nothing to split" in body["error"]
    status, state = request(server, "/api/curation/split", q(unit=str(split), at_s=5), body={})
    assert status == 200, state
    (entry,) = state["curation"]["splits"]
    first_part = len(entry["indices"][0])
    assert 0 < first_part < counts[str(split)]
    bad = {**state["curation"], "splits": [{**entry, "indices": [[counts[str(split)] + 5]]}]}
    status, body = request(server, "/api/curation", q(), body=bad)
    assert status == 400 and "spike indices must be in" in body["error"]
    bad = {**state["curation"], "splits": [entry, entry]}
    status, body = request(server, "/api/curation", q(), body=bad)
    assert status == 400 and "split twice" in body["error"]
    history = state["history"]
    assert [h["curator"] for h in history] == ["Ada Tester"] * 2 and all(h["saved_at"] for h in history)
    assert history[0]["change"] == "merge, remove, label" and history[1]["change"].startswith(f"split unit {split}")

    status, record = request(server, "/api/apply", q(), body={})
    assert status == 200, record
    assert record["applied_by"] == "Ada Tester" and record["nwb"]["num_units"] == record["num_units_out"]
    applied = si.load(layout.manual_sorting(STREAM))
    # 4+ units: two merged into one, one removed, one split into two
    assert applied.get_num_units() == len(units) - 1 - 1 + 1
    applied_counts = {str(u): int(n) for u, n in applied.count_num_spikes_per_unit().items()}
    new_units = [u for u in applied_counts if u not in counts]
    assert sorted(applied_counts[u] for u in new_units) == sorted(
        [counts[str(merged[0])] + counts[str(merged[1])], first_part, counts[str(split)] - first_part])
    assert {str(u) for u in applied.unit_ids} == set(record["unit_ids_out"])

    path = layout.manual_sorting(STREAM) / record["nwb"]["path"]
    messages = list(inspect_nwbfile(nwbfile_path=path, config=load_config("dandi")))
    # the web app's session was run without a metadata file: no subject, as in its session NWB (the run logged
    # what DANDI will ask for); everything else must pass
    serious = [m for m in messages if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION,
                                                       Importance.ERROR)
               and m.check_function_name != "check_subject_exists"]
    assert not serious, [f"{m.importance.name} {m.check_function_name}: {m.message}" for m in serious]
    assert list(pynwb.validate(path=str(path))) == []
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        table = io.read().units.to_dataframe()
    assert sorted(table["si_unit_id"]) == sorted(str(u) for u in applied.unit_ids)
    for unit_id, times in zip(table["si_unit_id"], table["spike_times"]):
        assert len(times) == applied_counts[unit_id]
    assert table["waveform_mean"].map(len).min() > 0
