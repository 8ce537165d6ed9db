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
