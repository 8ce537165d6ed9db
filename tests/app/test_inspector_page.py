"""Model inspector in AppTest: batch norm and softmax views, trials, and the BN experiment."""

from __future__ import annotations

from engine import babysit
from tests.app.conftest import no_exception
from tests.app.panda_helpers import (
    button,
    chart_specs,
    poll,
    trace_names,
    trained_session,
    trained_trial,
    values,
)


def _types(spec: dict) -> list[str]:
    return [t.get("type", "scatter") for t in spec["data"]]


def test_without_a_model_it_offers_a_picker_and_the_experiment(open_page):
    at = open_page("inspector")
    no_exception(at)
    assert not at.error
    assert [t.label for t in at.tabs] == ["A babysitting session", "A trial of a study"]
    assert button(at, "Run the experiment")


def test_session_model_batch_norm_and_softmax(open_page, conn):
    session_id = trained_session(conn, epochs=3)
    at = open_page("inspector", session=session_id)
    no_exception(at)
    assert not at.error
    assert [t.label for t in at.tabs] == ["Batch norm", "Softmax", "Boundary and activations",
                                          "Experiment: with and without BN"]
    specs = chart_specs(at)
    histograms = next(s for s in specs if _types(s) == ["histogram"] * 4)
    assert trace_names(histograms) == ["training mode", "evaluation mode"] * 2
    stats = next(s for s in specs if _types(s) == ["bar", "scatter", "bar", "scatter"])
    assert len(values(stats["data"][0]["y"])) == 8  # one bar per unit of layer 1
    heat = next(s for s in specs if _types(s) == ["heatmap"])
    assert values(heat["data"][0]["text"]).sum() == 40  # the validation set of 200 moons
    soft = next(s for s in specs if "soft max: probabilities" in str(s["layout"]))
    bars = [t for t in soft["data"] if t.get("xaxis", "x") == "x"]
    assert bars and all(abs(values(t["y"]).sum() - 1) < 1e-5 for t in bars)
    next(w for w in at.selectbox if w.label == "Hidden layer").set_value(2).run()
    at.radio(key="insp_split").set_value("training").run()
    no_exception(at)
    heat = next(s for s in chart_specs(at) if _types(s) == ["heatmap"])
    assert values(heat["data"][0]["text"]).sum() == 160


def test_model_without_batch_norm_says_so(open_page, conn):
    session_id = trained_session(conn, epochs=1, batch_norm=False)
    at = open_page("inspector", session=session_id)
    no_exception(at)
    assert any("no batch-norm layers" in i.value for i in at.info)


def test_trial_model_and_a_trial_without_checkpoint(open_page, conn):
    with_checkpoint, without = trained_trial(conn, epochs=2)
    at = open_page("inspector", trial=with_checkpoint)
    no_exception(at)
    assert not at.error
    assert "trial 0 of study 'fake study' (epoch 2)" in " ".join(m.value for m in at.markdown)
    at = open_page("inspector", trial=without)
    no_exception(at)
    assert "has no checkpoint yet" in at.error[0].value
    button(at, "Choose another model").click().run()  # a way out, back to the picker
    no_exception(at)
    assert not at.error and "trial" not in at.query_params


def test_bn_experiment_runs_two_sessions_in_the_background(open_page, conn):
    at = open_page("inspector")
    at.number_input[0].set_value(3)  # epochs
    button(at, "Run the experiment").click().run()
    no_exception(at)
    with_bn, without_bn = (int(i) for i in at.query_params["bn_exp"].split(","))
    assert babysit.session_view(conn, with_bn)["model"]["batch_norm"] is True
    assert babysit.session_view(conn, without_bn)["model"]["batch_norm"] is False

    def finished(a) -> bool:
        return all(babysit.session_view(conn, i)["status"] != "running"
                   and not babysit.session_view(conn, i)["pending_commands"]
                   for i in (with_bn, without_bn))

    poll(at, finished, timeout=60)
    at.run()
    no_exception(at)
    curves = next(s for s in chart_specs(at) if "with batch norm (val)" in trace_names(s))
    assert len(curves["data"]) == 4 and curves["layout"]["yaxis"]["type"] == "log"
    with_val = curves["data"][0]
    assert len(with_val["x"]) >= 1  # epochs the runner trained (a diverged one is not stored)
