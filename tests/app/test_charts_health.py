"""The health figures and table cells, on hand-made epochs and trials (no browser)."""

from __future__ import annotations

from app.charts.health import (
    CLEAN_COLOR,
    FLAG_COLOR,
    MIN_WIDTH,
    dead_network_note,
    flag_groups,
    health_cells,
    health_figure,
    health_series,
    layers_in,
    log_ticks,
    params_by_flag,
)
from app.views.health import flag_options, flag_summary_text


def epoch(n: int, health: dict | None = None) -> dict:
    out = {"epoch": n, "train_loss": 1.0 / n, "val_loss": 1.0 / n, "train_acc": 0.5,
           "val_acc": 0.5, "learning_rate": 0.1, "seconds": 0.01}
    if health is not None:
        out["health"] = health
    return out


def health(grad: float, dead2: float) -> dict:
    return {"grad_norm": grad, "grad_norm_1": grad / 2, "grad_norm_2": grad, "grad_norm_3": 0.0,
            "update_ratio_1": 1e-3, "update_ratio_2": 2e-3, "dead_1": 0.0, "dead_2": dead2,
            "max_prob": 0.9, "confident_wrong": 0.25}


EPOCHS = [epoch(1, health(1.0, 0.1)), epoch(2), epoch(3, health(1e4, 0.7))]
EXPLODING = {"kind": "exploding_gradients", "epoch": 3, "layer": None, "value": 1e4,
             "text": "exploding gradients from epoch 3 (norm 1e4)"}


def test_series_skip_epochs_without_health():
    assert health_series(EPOCHS, "grad_norm_2") == ([1, 3], [1.0, 1e4])
    assert health_series(EPOCHS, "bn_shift_1") == ([], [])
    assert layers_in([h for h in (e.get("health") for e in EPOCHS) if h], "dead") == [1, 2]


def test_health_figure_draws_a_line_per_layer_and_marks_the_flags():
    fig = health_figure(EPOCHS, [EXPLODING])
    grads = [t for t in fig.data if t.xaxis == "x" and t.name.startswith("layer")]
    assert [t.name for t in grads] == ["layer 1", "layer 2", "layer 3"]
    assert list(grads[1].y) == [1.0, 1e4]
    assert list(grads[2].y) == []  # a zero norm cannot sit on a log axis
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    dead = [t for t in fig.data if t.xaxis == "x3" and t.hovertext is None]
    assert [list(t.y) for t in dead] == [[0.0, 0.0], [0.1, 0.7]]
    softmax = {t.name: list(t.y) for t in fig.data if t.xaxis == "x4"}
    assert softmax == {"mean max probability": [0.9, 0.9], "confident and wrong": [0.25, 0.25]}
    marks = [t for t in fig.data if t.hovertext is not None]
    assert [list(t.x) for t in marks] == [[3]] and marks[0].hovertext[0] == EXPLODING["text"]
    assert {s.x0 for s in fig.layout.shapes} == {3}  # a dotted line in every panel


def test_health_cells_and_summary():
    sick = {"number": 0, "flags": [EXPLODING], "health": health(1e4, 0.7)}
    well = {"number": 1, "flags": [], "health": None}
    cells = health_cells(sick)
    assert cells["flags"] == "exploding gradients" and cells["grad norm"] == 1e4
    assert cells["confident wrong"] == 0.25 and cells["dead ReLUs"] is None  # not in the dict
    assert health_cells(well)["flags"] == "" and health_cells(well)["grad norm"] is None
    dead = {"kind": "dead_relus", "epoch": 3, "layer": 2, "value": 0.7, "text": "70% dead"}
    trials = [sick, well, {"number": 2, "flags": [EXPLODING, dead]}]
    assert flag_summary_text(trials) == ("2 trials with exploding gradients · "
                                         "1 trial with dead ReLUs")
    assert flag_summary_text([well]) == ""
    assert flag_options(trials) == ["score", "any", "exploding_gradients", "dead_relus"]
    assert flag_options([well]) == ["score"]


def test_points_coloured_by_a_flag():
    space = {"params": {"learning_rate": {"type": "float", "low": 1e-3, "high": 10.0,
                                          "scale": "log"}}, "fixed": {}}
    trials = [{"number": i, "state": "complete", "params": {"learning_rate": lr},
               "best_val_acc": acc, "flags": flags}
              for i, (lr, acc, flags) in enumerate([(0.01, 0.9, []), (3.0, 0.3, [EXPLODING]),
                                                    (9.0, None, [EXPLODING])])]
    flagged, clean = flag_groups(trials, "exploding_gradients")
    assert [t["number"] for t in flagged] == [1, 2] and [t["number"] for t in clean] == [0]
    assert flag_groups(trials, "dead_relus")[0] == []
    fig = params_by_flag(trials, space, kind="exploding_gradients")
    by_colour = {t.marker.color: t for t in fig.data}
    assert list(by_colour[FLAG_COLOR].x) == [3.0]  # trial 2 has no score: not drawn
    assert list(by_colour[CLEAN_COLOR].x) == [0.01]
    assert by_colour[FLAG_COLOR].name == "exploding gradients (1)"
    assert "exploding gradients from epoch 3" in by_colour[FLAG_COLOR].hovertext[0]
    assert fig.layout.xaxis.type == "log"


def dead_health(dead2: float, grad2: float) -> dict:
    """Layer 2 of a 2-hidden-layer ReLU net with ``dead2`` of its units dead."""
    return {"grad_norm": 0.3, "grad_norm_1": grad2, "grad_norm_2": grad2, "grad_norm_3": grad2,
            "update_ratio_1": 0.0, "update_ratio_2": 0.0, "update_ratio_3": 0.0,
            "dead_1": 0.2, "dead_2": dead2, "max_prob": 0.4, "confident_wrong": 0.0}


def test_a_net_whose_relus_all_died_is_explained_not_left_empty():
    epochs = [epoch(1, dead_health(0.5, 0.2)), epoch(2, dead_health(1.0, 0.0)),
              epoch(3, dead_health(1.0, 0.0))]
    note = dead_network_note(epochs)
    assert note.startswith("Every ReLU in layer 2 is dead (epoch 3)")
    assert "layers 1 to 3 get a zero gradient" in note and "Lower the learning rate" in note
    fig = health_figure(epochs)
    texts = {a.text: (a.xref, a.yref) for a in fig.layout.annotations if a.name == "zero"}
    assert texts == {  # both log panels say why they are empty, and since when
        "layers 1, 2, 3: 0<br>since epoch 1<br>(no gradient flows)": ("x2 domain", "y2 domain"),
        "layers 1, 2, 3: 0<br>since epoch 2<br>(no gradient flows)": ("x domain", "y domain")}
    # a layer still passing gradient (a leaky ReLU), or alive again, needs no note
    assert dead_network_note([epoch(1, dead_health(1.0, 0.01))]) is None
    assert dead_network_note(epochs + [epoch(4, dead_health(0.9, 0.1))]) is None
    assert dead_network_note([epoch(1)]) is None


def test_panel_titles_and_notes_fit_their_panels_without_overlap():
    """The babysit column can be narrow: at MIN_WIDTH px every title and note line must fit
    inside its panel (estimated at 0.6 em a character), the four titles sit on two rows, and
    between the rows there is room for the upper row's tick labels and the lower row's titles."""
    epochs = [epoch(1, dead_health(1.0, 0.0)), epoch(2, dead_health(1.0, 0.0))]
    fig = health_figure(epochs, [EXPLODING], height=460)
    layout = fig.layout
    plot_width = MIN_WIDTH - layout.margin.l - layout.margin.r
    titles = [a for a in layout.annotations if a.name != "zero"]
    assert len(titles) == 4 and len({round(a.y, 3) for a in titles}) == 2
    for a in layout.annotations:
        ref = a.xref.split()[0] if a.xref != "paper" else None
        axis = layout[f"xaxis{ref[1:]}" if ref else None] if ref else None
        if ref is None:  # a title: centred over its panel's x domain
            axis = min((layout[k] for k in layout if k.startswith("xaxis")),
                       key=lambda ax: abs((ax.domain[0] + ax.domain[1]) / 2 - a.x))
        width = (axis.domain[1] - axis.domain[0]) * plot_width
        for line in a.text.split("<br>"):
            assert len(line) * 0.6 * a.font.size <= width, (line, width)
    upper = min(layout[k].domain[0] for k in ("yaxis", "yaxis2"))
    lower = max(layout[k].domain[1] for k in ("yaxis3", "yaxis4"))
    plot_height = 460 - layout.margin.t - layout.margin.b
    assert (upper - lower) * plot_height >= 12 + 2 * max(a.font.size for a in titles) + 10


def test_log_axes_get_a_few_readable_ticks():
    assert log_ticks([1.0, 1e6]) == [1.0, 100.0, 1e4, 1e6]
    assert log_ticks([1e-3, 7e-3]) == [1e-3, 2e-3, 5e-3, 1e-2]
    assert log_ticks([0.3, 0.6]) == [0.2, 0.5, 1.0]
    assert log_ticks([]) == []
    fig = health_figure(EPOCHS)
    assert list(fig.layout.yaxis.ticktext) == ["0.1", "10", "1e3"]  # 0.5 .. 1e4: every 2nd
    assert list(fig.layout.yaxis2.ticktext) == ["0.001", "0.002", "0.005"]
