"""Belief charts from real sampler beliefs: slices on each parameter's scale, zoom rounds."""

from __future__ import annotations

import numpy as np
import pytest

from app.charts.belief import rounds_table, slices_figure, zoom_rounds_figure
from engine.search import (
    Choice,
    Float,
    History,
    Int,
    Objective,
    Space,
    TrialRecord,
    sampler_from_dict,
)

SPACE = Space({
    "learning_rate": Float(1e-4, 1.0, "log"),
    "beta1": Float(0.8, 0.999, "one_minus_log"),
    "hidden_units": Int(8, 128, "log"),
    "batch_norm": Choice([True, False]),
})


def history(n: int = 30) -> History:
    rng = np.random.default_rng(0)
    trials = []
    for k in range(n):
        params = SPACE.params_from_unit(rng.random(SPACE.n_dims))
        u = SPACE.unit_from_params(params)
        acc = 0.9 - (u[0] - 0.6) ** 2 - 0.1 * (params["batch_norm"] is False)
        trials.append(TrialRecord(k, tuple(u), params, "complete", {5: float(acc)}, 5))
    return History(tuple(trials), Objective("val_acc"), 0, None)


def trial_dicts(h: History) -> list[dict]:
    return [{"number": t.number, "state": t.state, "params": dict(t.params),
             "best_val_acc": t.final_score, "best_val_loss": None, "epochs_done": 5}
            for t in h.trials]


@pytest.mark.parametrize("kind", ["gp", "tpe"])
def test_slices_per_parameter_on_its_own_scale(kind) -> None:
    h = history()
    belief = sampler_from_dict({"kind": kind}).describe(SPACE, h)
    fig = slices_figure(belief, SPACE.to_dict())
    layout = fig.to_plotly_json()["layout"]
    assert layout["xaxis"]["type"] == "log"  # learning rate
    assert layout["xaxis2"]["type"] == "log" and layout["xaxis2"]["autorange"] == "reversed"
    assert layout["xaxis2"]["title"]["text"] == "1 - beta1"
    assert layout["xaxis4"]["type"] == "category"
    by_name: dict[str, list] = {}
    for trace in fig.data:
        by_name.setdefault(trace.name, []).append(trace)
    assert len(by_name["observed trials"]) == 4
    assert all(len(t.x) == len(h.trials) for t in by_name["observed trials"])
    mean = by_name["predicted score"]  # the three numeric panels draw a line...
    assert len(mean) == 3 and len(by_name["band (2 sd)"]) == 3
    lr = belief["slices"]["learning_rate"]
    np.testing.assert_allclose(mean[0].y, lr["mean"])
    np.testing.assert_allclose(mean[0].x, lr["values"])  # values, not unit coordinates
    assert all(lo <= m <= hi for lo, m, hi in zip(lr["low"], lr["mean"], lr["high"]))
    assert len(by_name["predicted (2 sd)"]) == 1  # ...the choice one a point per option
    assert list(by_name["predicted (2 sd)"][0].x) == ["True", "False"]


def test_zoom_rounds_outline_each_box() -> None:
    h = history(40)
    zoom = sampler_from_dict({"kind": "zoom", "first_round": 16, "round_size": 8})
    belief = zoom.describe(SPACE, h)
    assert [r["round"] for r in belief["rounds"]] == [0, 1, 2, 3]
    fig = zoom_rounds_figure(trial_dicts(h), SPACE.to_dict(), "learning_rate", "hidden_units",
                             belief)
    boxes = [t for t in fig.data if (t.name or "").startswith("round ")]
    assert [t.name for t in boxes] == ["round 1 box", "round 2 box", "round 3 box"]
    widths = [np.log10(max(t.x)) - np.log10(min(t.x)) for t in boxes]
    assert widths[0] > widths[1] > widths[2]  # each round's box is smaller
    assert boxes[-1].line.dash == "solid" and boxes[0].line.dash == "dash"
    none = zoom_rounds_figure(trial_dicts(h), SPACE.to_dict(), "learning_rate", "batch_norm",
                              belief)
    assert not [t for t in none.data if (t.name or "").startswith("round ")]
    table = rounds_table(belief, SPACE.to_dict())
    assert table[0]["learning_rate"] == "whole range" and table[1]["box width"] == "50%"
    assert " .. " in table[1]["learning_rate"]


def test_slices_name_each_panel_once() -> None:
    """Each panel's parameter is named by its x axis title (on its own scale), not repeated
    in a subplot title above the panel."""
    belief = sampler_from_dict({"kind": "gp"}).describe(SPACE, history())
    layout = slices_figure(belief, SPACE.to_dict()).to_plotly_json()["layout"]
    titles = [layout[f"xaxis{'' if i == 1 else i}"]["title"]["text"] for i in range(1, 5)]
    assert titles == ["learning_rate", "1 - beta1", "hidden_units", "batch_norm"]
    texts = [a.get("text") for a in layout.get("annotations", ())]
    names = {*SPACE.params, *titles}
    assert not [t for t in texts if t in names], texts
