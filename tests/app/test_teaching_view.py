"""The inspector's teaching view: the boundary at each kept epoch (a slider) and one input's
activations, layer by layer."""

from __future__ import annotations

import json

from tests.app.conftest import no_exception
from tests.app.panda_helpers import trained_session


def specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def boundary_of(at) -> dict:
    return next(s for s in specs(at) if any(t.get("name") == "the chosen input"
                                            for t in s["data"]))


def activations_of(at) -> dict:
    return next(s for s in specs(at) if any(t.get("type") == "heatmap"
                                            and t.get("name") == "layer 1" for t in s["data"]))


def test_the_boundary_moves_over_the_epochs_and_the_layers_light_up(open_page, conn):
    session_id = trained_session(conn, epochs=3, batch_norm=False)
    at = open_page("inspector", session=session_id)
    no_exception(at)
    slider = at.select_slider(key=f"teach_epoch_{session_id}")
    assert list(slider.options) == ["0", "1", "2", "3"] and slider.value == 3
    assert "Decision boundary at epoch 3" in " ".join(m.value for m in at.markdown)
    late = boundary_of(at)["data"][0]["z"]
    slider.set_value(0).run()
    no_exception(at)
    assert "Decision boundary at epoch 0" in " ".join(m.value for m in at.markdown)
    assert boundary_of(at)["data"][0]["z"] != late  # the model at epoch 0 draws another one
    acts = activations_of(at)
    heat = [t for t in acts["data"] if t.get("type") == "heatmap"]
    assert [len(t["z"][0]) for t in heat] == [8, 8]  # two hidden layers of 8 units
    probs = next(t for t in acts["data"] if t.get("type") == "bar")
    assert abs(sum(probs["y"]) - 1.0) < 1e-6
    at.number_input(key=next(k for k in at.session_state if str(k).startswith("teach_input_"))
                    ).set_value(5).run()
    no_exception(at)
    assert activations_of(at)["data"][0]["z"] != heat[0]["z"]  # another input, other activity
