"""Population-based training in the dashboard: the designer offers it (rounds, validation
messages, the knobs it will not move), and the live page shows the population."""

from __future__ import annotations

import json

from engine.storage import studies as store
from engine.study.facade import new_study
from engine.study.runner import run_study
from tests.app.conftest import no_exception
from tests.app.fakes import fake_study

MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def pbt_designer(open_page):
    at = open_page("designer")
    at.radio(key="designer.schedule").set_value("pbt").run()
    no_exception(at)
    return at


def test_designer_offers_pbt_with_rounds_and_names_the_knobs_it_keeps(open_page):
    at = pbt_designer(open_page)
    assert errors(at) == [] and not at.button(key="designer.launch").disabled
    keys = [n.key for n in at.number_input]
    assert "designer.pbt_interval" in keys and "designer.pbt_rounds" in keys
    assert "designer.epochs" not in keys  # the rounds set the budget
    assert any("Each trial trains 20 epochs in 5 rounds of 4" in c.value for c in at.caption)
    (info,) = [i.value for i in at.info]
    assert "hidden_units, batch_norm will be sampled once per trial" in info


def test_designer_names_what_pbt_cannot_run(open_page):
    at = pbt_designer(open_page)
    at.number_input(key="designer.n_trials").set_value(1).run()
    assert any("n_trials must be >= 2 for population-based training" in e for e in errors(at))
    assert at.button(key="designer.launch").disabled
    at.number_input(key="designer.n_trials").set_value(8).run()
    at.number_input(key="designer.pbt_rounds").set_value(0).run()
    assert errors(at) == ["Rounds must be at least 1, got 0"]
    at.number_input(key="designer.pbt_rounds").set_value(3).run()
    for knob in ("learning_rate", "beta1", "l2"):
        at.toggle(key=f"hp.{knob}.search").set_value(False).run()
    no_exception(at)
    assert any("population-based training perturbs searched training knobs" in e
               for e in errors(at))
    assert at.button(key="designer.launch").disabled


def test_launching_pbt_opens_its_live_page(open_page, conn):
    at = pbt_designer(open_page)
    at.number_input(key="designer.n_trials").set_value(4).run()
    at.number_input(key="designer.pbt_interval").set_value(1).run()
    at.number_input(key="designer.pbt_rounds").set_value(2).run()
    at.button(key="designer.launch").click().run()
    no_exception(at)
    (study,) = store.list_studies(conn)
    assert study["scheduler"] == {"kind": "pbt", "interval": 1, "n_rounds": 2, "quantile": 0.25,
                                  "perturb": [0.8, 1.2], "resample_probability": 0.25}
    assert any("population-based, 2 rounds of 1 epochs" in c.value for c in at.caption)


def test_live_page_shows_the_population(open_page, conn, app_db):
    space = {"params": {"learning_rate": {"type": "float", "low": 1e-3, "high": 0.3,
                                          "scale": "log"}},
             "fixed": {"hidden_layers": 1, "hidden_units": 8, "batch_size": 32}}
    study_id = new_study(conn, name="pbt", space=space, sampler={"kind": "random"},
                         scheduler={"kind": "pbt", "interval": 2, "n_rounds": 3}, dataset=MOONS,
                         n_trials=4, seed=5, workers=2)
    assert run_study(app_db, study_id) == "complete"
    at = open_page("studies", study=study_id)
    at.segmented_control(key="study.view.pbt").set_value("Population").run()
    no_exception(at)
    assert not at.error
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t["name"] for t in spec["data"]]
    assert names == ["trial 0", "trial 1", "trial 2", "trial 3", "exploits (donor→recipient)"]
    assert spec["layout"]["yaxis"]["type"] == "log"
    table = at.dataframe[0].value
    assert list(table["epoch"]) == [2, 4] and "learning_rate" in table
    other = fake_study(conn, 4, 3)  # an ordinary study has no Population view
    at = open_page("studies", study=other)
    no_exception(at)
    assert "Population" not in at.segmented_control(key="study.view").options
