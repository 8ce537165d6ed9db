"""Studies, live: every view renders, stop/resume follow the study's state, the URL keeps the
study, zoom studies are drawn with their parent."""

from __future__ import annotations

import json

import pytest

from engine.storage import runners
from engine.storage import studies as store
from tests.app.conftest import no_exception
from tests.app.fakes import fake_study

VIEWS = ["Curves and points", "Trials", "Sampled points", "Parallel coordinates",
         "Best so far",
         "Zoom in", "Export"]


def show(at, view: str):
    at.segmented_control(key="study.view").set_value(view).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    return at


def spec(at, i: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def test_no_study_yet(open_page):
    at = open_page("studies")
    no_exception(at)
    assert "No study yet" in at.info[0].value


def test_curves_progress_and_metrics(open_page, conn):
    study_id = fake_study(conn, 12, 6, finished=9, status="stopped")
    at = open_page("studies", study=study_id)
    no_exception(at)
    assert at.get("progress")[0].value == 75  # 9 of 12 trials
    assert at.metric[2].value == "54"  # epochs trained
    names = [t["name"] for t in spec(at)["data"]]
    best = max(store.list_trials(conn, study_id), key=lambda t: t["best_val_acc"] or 0)
    assert f"val: best (trial {best['number']})" in names and "val: all trials" in names
    assert [b.label for b in at.button] == ["▶ Resume"]
    assert spec(at)["layout"]["meta"]["y_scale"] == "auto"  # the default fits normal curves
    at.segmented_control(key="curves.y_scale").set_value("log").run()
    assert spec(at)["layout"]["yaxis"]["type"] == "log"
    at.pills(key="curves.splits").set_value(["train"]).run()
    assert all(n.startswith("train") for n in (t["name"] for t in spec(at)["data"]))


@pytest.mark.parametrize("view", VIEWS[1:])
def test_every_view_renders(open_page, conn, view):
    study_id = fake_study(conn, 10, 4)
    at = show(open_page("studies", study=study_id), view)
    if view == "Trials":
        table = at.dataframe[0].value
        assert len(table) == 10 and {"learning_rate", "best val acc", "state"} <= set(table)
        assert at.button(key="trials.babysit").label == "Babysit this trial"
    elif view == "Sampled points":
        layout = spec(at)["layout"]
        titles = {layout[k]["title"]["text"]: layout[k]["type"] for k in layout
                  if k.startswith("xaxis") and "title" in layout[k]}
        assert titles["learning_rate"] == "log" and titles["1 - beta1"] == "log"
        assert titles["batch_norm"] == "category"
    elif view == "Parallel coordinates":
        assert spec(at)["data"][0]["type"] == "parcoords"
    elif view == "Best so far":
        assert len(at.get("plotly_chart")) == 2
    elif view == "Zoom in":
        assert at.button(key="zoom.launch")
        assert "zoom box" in [t["name"] for t in spec(at)["data"]]
    elif view == "Export":
        assert len(at.get("download_button")) == 2


def test_exports_are_the_engines_escaped_csv(conn):
    from app.study_views import export_csv

    study_id = fake_study(conn, 4, 3)
    trials = export_csv(study_id, "trials")().splitlines()
    metrics = export_csv(study_id, "metrics")().splitlines()
    assert trials[0].startswith("trial_id,number,state") and len(trials) == 5
    assert metrics[0].startswith("trial_id,number,epoch") and len(metrics) == 13


def test_a_missing_study_id_falls_back_to_the_newest(open_page, conn):
    fake_study(conn, 3, 2, name="old")
    newest = fake_study(conn, 3, 2, name="new")
    at = open_page("studies", study=999)
    no_exception(at)
    assert "no study #999" in at.warning[0].value
    assert at.query_params["study"] == str(newest)


def test_a_running_study_can_be_stopped(open_page, conn):
    study_id = fake_study(conn, 6, 3, finished=2, status="running")
    assert runners.register_runner(conn, "study", study_id)  # this process plays the runner
    at = open_page("studies", study=study_id)
    no_exception(at)
    assert "running" in at.markdown[0].value
    at.button(key="study.stop").click().run()
    no_exception(at)
    assert store.get_study(conn, study_id)["status"] == "stopping"
    assert [i["command"] for i in runners.pending_intents(conn, "study", study_id)] == ["stop"]


def test_an_interrupted_study_offers_resume(open_page, conn):
    study_id = fake_study(conn, 6, 3, finished=2, status="running")  # no runner alive
    at = open_page("studies", study=study_id)
    assert "stopped unexpectedly" in at.warning[0].value
    assert at.button(key="study.resume")


def test_zoom_study_is_drawn_with_its_parent_and_box(open_page, conn):
    parent = fake_study(conn, 10, 3, name="parent")
    box = {"unit": {}, "values": {"learning_rate": [1e-3, 1e-1], "beta1": [0.9, 0.99]}}
    child = fake_study(conn, 5, 3, name="child", seed=3, parent_id=parent, box=box)
    at = show(open_page("studies", study=child), "Sampled points")
    pair = spec(at, 1)
    assert [t["name"] for t in pair["data"]] == ["parent", "child", "zoom box"]
    assert any(f"Zoom study of #{parent}" in c.value for c in at.caption)


def test_babysit_this_trial_hands_it_to_the_babysit_page(open_page, conn):
    from engine import babysit

    study_id = fake_study(conn, 5, 3)
    at = show(open_page("studies", study=study_id), "Trials")
    best = max(store.list_trials(conn, study_id), key=lambda t: t["best_val_acc"])
    assert at.selectbox(key="trials.babysit_pick").value["number"] == best["number"]
    at.button(key="trials.babysit").click().run()
    (session,) = babysit.list_sessions(conn)
    assert session["source_trial_id"] == best["id"]
    assert at.query_params["session"] == str(session["id"])


def test_selected_points_are_read_from_the_chart_event():
    from app.study_views import selected_numbers

    event = {"selection": {"points": [
        {"curve_number": 0, "customdata": [4, "complete"]},
        {"curve_number": 0, "customdata": [2, "complete"]},
        {"curve_number": 1},  # the zoom box outline has no trial
        {"curve_number": 0, "customdata": [4, "complete"]},
    ]}}
    assert selected_numbers(event) == [2, 4]
    assert selected_numbers(None) == [] and selected_numbers({"selection": {}}) == []


@pytest.mark.parametrize("mode", ["top", "selection"])
def test_zoom_launches_a_child_in_the_box(open_page, conn, mode):
    parent = fake_study(conn, 12, 3, name="parent")
    at = show(open_page("studies", study=parent), "Zoom in")
    at.segmented_control(key="zoom.mode").set_value(mode).run()
    if mode == "selection":
        assert "No trial selected yet" in at.info[0].value
        at.session_state["zoom.picked"] = [1, 5, 7]  # what a box drag on the chart stores
        at.run()
    assert len(at.dataframe[0].value) == 5  # one row per searched parameter
    at.number_input(key="zoom.n_trials").set_value(3)
    at.button(key="zoom.launch").click().run()
    no_exception(at)
    child = store.get_study(conn, int(at.query_params["study"]))
    assert child["parent_id"] == parent and child["n_trials"] == 3
    assert child["sampler"]["kind"] == "coarse_to_fine" and set(child["box"]["unit"]) == set(
        store.get_study(conn, parent)["space"]["params"])
    picked = [t for t in store.list_trials(conn, parent) if t["number"] in (1, 5, 7)]
    bounds = list(child["box"]["unit"].values())
    for trial in store.list_trials(conn, child["id"]):
        assert all(lo - 1e-9 <= u <= hi + 1e-9 for u, (lo, hi) in zip(trial["unit"], bounds))
    if mode == "selection":
        assert child["sampler"]["top_k"] == 3
        assert {p["score"] for p in child["sampler"]["parent_trials"]} == {
            t["best_val_acc"] for t in picked}


def test_a_queued_study_without_runner_can_be_started(open_page, conn):
    study_id = fake_study(conn, 4, 2, finished=0, status="queued")
    at = open_page("studies", study=study_id)
    no_exception(at)
    assert at.button(key="study.resume").label == "▶ Start"
    assert not [b for b in at.button if b.key == "study.stop"]


def test_the_view_is_in_the_url_so_a_refresh_keeps_it(open_page, conn):
    """QA: a refresh of the Trials view came back on 'Curves and points'."""
    study_id = fake_study(conn, 6, 3)
    at = open_page("studies", study=study_id)
    show(at, "Trials")
    again = open_page("studies", study=study_id, **{"study.view": "Trials"})
    no_exception(again)
    assert again.segmented_control(key="study.view").value == "Trials"
    assert len(again.dataframe) == 1 and not again.get("plotly_chart")


def test_trial_table_shows_float_parameters_to_three_significant_digits(open_page, conn):
    """QA: four decimals showed learning rates 1.2e-4 and 1.4e-4 both as 0.0001."""
    study_id = fake_study(conn, 4, 2)
    at = show(open_page("studies", study=study_id), "Trials")
    columns = json.loads(at.dataframe[0].proto.columns)
    floats = [n for n, d in store.get_study(conn, study_id)["space"]["params"].items()
              if d["type"] == "float"]
    assert floats and all(columns[n]["type_config"]["format"] == "%.3g" for n in floats)
    assert columns["best val acc"]["type_config"]["format"] == "%.4f"


def test_the_trials_view_says_which_epoch_babysitting_forks_at(open_page, conn, monkeypatch):
    from engine import babysit

    # made-up curves, which no replay retraces: stand for a trial that trained alone
    monkeypatch.setattr(babysit, "trial_replays", lambda conn, trial_id: True, raising=False)
    study_id = fake_study(conn, 3, 4)
    trial = max(store.list_trials(conn, study_id), key=lambda t: t["best_val_acc"])  # picked
    at = show(open_page("studies", study=study_id), "Trials")
    assert any("has no checkpoint kept: babysitting starts it afresh" in c.value
               for c in at.caption)
    from engine.storage.blobs import save_checkpoint

    checkpoint = save_checkpoint(conn, b"weights", epoch=4)
    conn.execute("UPDATE trials SET checkpoint_id = ? WHERE id = ?", (checkpoint, trial["id"]))
    at.run()
    assert any(f"forks trial {trial['number']} at any epoch 1..4: epoch 4 from its "
               "checkpoint, an earlier one replayed" in c.value for c in at.caption)
    assert at.number_input(key=f"trials.fork_epoch.{trial['id']}").value == 4


def test_the_study_page_says_whether_its_trials_train_stacked(open_page, conn):
    """The engine's plan over the study's own trials, as the designer said it before launch."""
    from engine.data import DatasetSpec, build_dataset
    from engine.study.stacking import stacking_plan_for

    study_id = fake_study(conn, 6, 3)
    at = open_page("studies", study=study_id)
    no_exception(at)
    note = next(c.value for c in at.caption if ":material/stacks:" in c.value)
    study = store.get_study(conn, study_id)
    data = build_dataset(DatasetSpec.from_dict(study["dataset"]))
    plan = stacking_plan_for(study["space"], study["sampler"], study["scheduler"],
                             n_trials=6, seed=study["seed"], workers=study["workers"],
                             n_features=data.n_features, n_classes=data.n_classes,
                             params=[t["params"] for t in store.list_trials(conn, study_id)])
    assert plan["total"] == 6 and note == f":material/stacks: {plan['text']}"
    assert plan["text"].startswith(("Runs stacked", "Every trial trains alone"))


def test_the_zoom_box_table_is_formatted_text_and_keeps_every_option(open_page, conn):
    parent = fake_study(conn, 12, 3, name="parent")
    at = show(open_page("studies", study=parent), "Zoom in")
    table = at.dataframe[0].value
    assert list(table.columns) == ["parameter", "from", "to"]
    rows = {r["parameter"]: r for r in table.to_dict("records")}
    assert all(isinstance(v, str) for r in rows.values() for v in r.values())  # Arrow-safe
    low = rows["learning_rate"]["from"]
    assert len(low.replace(".", "").replace("-", "").lstrip("0").split("e")[0]) <= 4  # 4 digits
    assert rows["batch_norm"]["from"] == "one of True, False"  # a Choice stays a Choice
