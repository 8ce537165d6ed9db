"""The population chart: learning-rate step lines per trial on a log axis, exploit markers."""

from __future__ import annotations

from app.charts.population import population_figure


def metrics(rows):
    columns = ("number", "epoch", "learning_rate")
    return {name: [r[i] for r in rows] for i, name in enumerate(columns)}


# trial 0 (lr 0.1) copies trial 1 (lr 0.01) after epoch 2 and goes on with 0.012
ROWS = [(0, 1, 0.1), (0, 2, 0.1), (0, 3, 0.012), (0, 4, 0.012),
        (1, 1, 0.01), (1, 2, 0.01), (1, 3, 0.01), (1, 4, 0.01)]
LINEAGE = [{"number": 0, "donor_number": 1, "epoch": 2, "params": {"learning_rate": 0.012}}]


def test_step_lines_on_a_log_axis_with_exploit_markers():
    fig = population_figure(metrics(ROWS), LINEAGE)
    names = [t.name for t in fig.data]
    assert names == ["trial 0", "trial 1", "exploits (donor→recipient)"]
    trial0 = fig.data[0]
    assert trial0.line.shape == "vh"
    assert list(trial0.x) == [0, 1, 2, 3, 4]
    assert list(trial0.y) == [0.1, 0.1, 0.1, 0.012, 0.012]  # the jump drawn at x = 2
    exploits = fig.data[2]
    assert list(exploits.x) == [2] and list(exploits.y) == [0.012]
    assert list(exploits.text) == ["1→0"] and "trial 0 copies trial 1" in exploits.hovertext[0]
    assert fig.layout.yaxis.type == "log"
    assert "0.01" in fig.layout.yaxis.ticktext and fig.layout.xaxis.title.text == "epoch"


def test_an_exploit_before_the_next_epoch_uses_the_params():
    rows = [r for r in ROWS if r[1] <= 2]
    fig = population_figure(metrics(rows), LINEAGE)
    assert list(fig.data[-1].y) == [0.012]


def test_empty_study_and_many_trials():
    assert population_figure(metrics([]), []).data == ()
    many = [(n, e, 0.01 * (n + 1)) for n in range(30) for e in (1, 2)]
    fig = population_figure(metrics(many), [])
    assert len(fig.data) == 30 and fig.layout.showlegend is False


def test_close_exploit_labels_of_a_round_are_folded_not_piled_up():
    """Four exploits of one round at nearly one rate used to print four labels on one spot."""
    rows = [(n, e, lr) for n, lr in enumerate((0.0100, 0.0101, 0.0102, 0.5, 0.3, 0.2, 0.001))
            for e in (1, 2, 3, 4)]
    lineage = [{"number": n, "donor_number": d, "epoch": e, "params": {"learning_rate": lr}}
               for n, d, e, lr in ((0, 3, 2, 0.0100), (1, 4, 2, 0.0101), (2, 5, 2, 0.0102),
                                   (6, 3, 2, 0.5), (0, 4, 4, 0.0100), (1, 3, 4, 0.0101))]
    fig = population_figure(metrics(rows), lineage)
    exploits = fig.data[-1]
    assert len(exploits.x) == 6 and len(exploits.hovertext) == 6  # every copy keeps its hover
    shown = [(x, y, t) for x, y, t in zip(exploits.x, exploits.y, exploits.text) if t]
    assert sorted(t for _, _, t in shown) == ["3→0 +2", "3→6", "4→0 +1"]
    # labels left at one epoch are far apart on the log axis (the y span here is 2.7 decades)
    import math
    for x in {x for x, _, _ in shown}:
        ys = sorted(math.log10(y) for sx, y, _ in shown if sx == x)
        assert all(b - a > 0.08 * 2.7 for a, b in zip(ys, ys[1:]))
    # rounds alternate above and below their markers
    positions = {x: p for x, p, t in zip(exploits.x, exploits.textposition, exploits.text) if t}
    assert positions[2] != positions[4]
