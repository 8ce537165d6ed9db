"""Flags from a trial's epochs: hand-made series for the rules' edges, real training for the
three sick nets (exploding gradients, dead ReLUs, a saturated softmax) and a flat loss."""

from __future__ import annotations

import numpy as np
import pytest

from engine.diagnosis import (
    DEAD_SHARE,
    EXPLODING_NORM,
    FLAG_KINDS,
    count_flags,
    diagnose,
    flag_kinds,
    format_number,
)
from engine.nn import ModelSpec, TrainConfig, new_state, train_segment
from engine.nn.state import copy_state
from tests.engine.nn.conftest import blobs


def epoch(n: int, loss: float = 1.0, acc: float = 0.5, **health) -> dict:
    row = {"epoch": n, "train_loss": loss, "train_acc": acc, "val_loss": loss, "val_acc": acc}
    if health:
        row["health"] = {"grad_norm_1": 1.0, "grad_norm_2": 1.0, **health}
    return row


def learning(n: int) -> list[dict]:
    return [epoch(i, loss=1.0 / i, acc=0.5 + 0.04 * i) for i in range(1, n + 1)]


def test_a_healthy_run_raises_nothing():
    epochs = [{**e, "health": {"grad_norm_1": 0.5, "grad_norm_2": 0.3, "grad_norm": 0.6,
                               "dead_1": 0.1, "confident_wrong": 0.02}} for e in learning(10)]
    assert diagnose(epochs) == []
    assert diagnose([]) == []


def test_exploding_gradients_from_the_first_epoch_over_the_line():
    epochs = learning(9)
    for e, norm in zip(epochs, [0.5, 0.7, 2, 9, 40, 80, 300, 1.2e4, 5e3], strict=True):
        e["health"] = {"grad_norm": norm}
    [flag] = diagnose(epochs)
    # 80 is 160 times the first norm: exploding from epoch 6; the peak since then is quoted
    assert flag == {"kind": "exploding_gradients", "epoch": 6, "layer": None,
                    "value": 1.2e4, "text": "exploding gradients from epoch 6 (norm 1.2e4)"}
    big_from_the_start = [epoch(1, grad_norm=2e3), epoch(2, grad_norm=None)]
    assert diagnose(big_from_the_start)[0]["epoch"] == 1
    assert diagnose([epoch(1, grad_norm=EXPLODING_NORM * 0.99)]) == []


def test_dead_relus_name_the_worst_layer_and_when_it_started():
    epochs = learning(6)
    shares = [(0.1, 0.2), (0.3, 0.55), (0.2, 0.4), (0.5, 0.62), (0.55, 0.62), (0.6, 0.625)]
    for e, (d1, d2) in zip(epochs, shares, strict=True):
        e["health"] = {"grad_norm_1": 1, "grad_norm_2": 1, "grad_norm_3": 1,
                       "dead_1": d1, "dead_2": d2}
    [flag] = diagnose(epochs)
    assert flag["kind"] == "dead_relus" and flag["layer"] == 2 and flag["epoch"] == 4
    assert flag["text"] == "62% dead ReLUs in layer 2"
    epochs[-1]["health"]["dead_2"] = DEAD_SHARE - 0.01  # recovered at the last epoch
    assert [f["layer"] for f in diagnose(epochs)] == [1]  # layer 1 still is


def test_softmax_saturated_at_the_last_measured_epoch():
    epochs = learning(4)
    for e, wrong in zip(epochs, [0.0, 0.25, 0.4, None], strict=True):
        e["health"] = {"confident_wrong": wrong} if wrong is not None else None
    [flag] = diagnose(epochs)  # epoch 4 has no health: epoch 3 is the last measured
    assert flag["text"] == "softmax saturated: 40% confident and wrong"
    assert flag["epoch"] == 2 and flag["value"] == 0.4


def test_no_learning_needs_a_flat_loss_over_enough_epochs():
    flat = [epoch(i, loss=0.6931 + 1e-4 * (i % 2), acc=0.5) for i in range(1, 9)]
    [flag] = diagnose(flat)
    assert flag["kind"] == "no_learning" and flag["epoch"] == 1
    assert flag["text"] == "no learning: loss flat at 0.693 for 8 epochs"
    assert diagnose(flat[:4]) == []  # too few epochs to say
    slowly = [{**e, "train_loss": 0.6931 * (1 - 0.003 * i)} for i, e in enumerate(flat)]
    assert diagnose(slowly) == []  # 2.1% in 8 epochs is learning, slowly
    assert diagnose(learning(8)) == []


def test_format_number_and_counts():
    assert [format_number(v) for v in (1e4, 12345, 0.5, 2.0, 1e-5, 0)] == [
        "1e4", "1.2e4", "0.5", "2", "1e-5", "0"]
    flags = [diagnose([epoch(1, grad_norm=5e3, confident_wrong=0.5)]), [], None]
    assert flag_kinds(flags[0]) == ["exploding_gradients", "softmax_saturated"]
    assert count_flags(flags) == {**dict.fromkeys(FLAG_KINDS, 0), "exploding_gradients": 1,
                                  "softmax_saturated": 1}


# --- the three sick nets, trained for real ---------------------------------------------------

DATA = blobs(120, 40, 4, 3, seed=5)


def kinds(result) -> list[str]:
    return flag_kinds(diagnose(result.metrics))


def test_a_huge_learning_rate_is_flagged_as_exploding():
    spec = ModelSpec(4, (16, 16), 3, batch_norm=False)
    config = TrainConfig(optimizer="momentum", learning_rate=1.0, batch_size=8)
    result = train_segment(new_state(spec, 0), config, DATA, 6, health_every=1)
    assert "exploding_gradients" in kinds(result)
    sane = train_segment(new_state(spec, 0), TrainConfig(learning_rate=1e-2, batch_size=8),
                         DATA, 6, health_every=1)
    assert kinds(sane) == []


def test_a_net_with_dead_relus_is_flagged_and_does_not_learn():
    spec = ModelSpec(4, (8, 8), 3, batch_norm=False)
    state = copy_state(new_state(spec, 0))
    state.params["b2"][:6] = -1e3  # 6 of 8 units of layer 2 never fire, and stay so
    result = train_segment(state, TrainConfig(optimizer="sgd", learning_rate=1e-3), DATA, 5,
                           health_every=1)
    [dead] = [f for f in diagnose(result.metrics) if f["kind"] == "dead_relus"]
    assert dead["text"] == "75% dead ReLUs in layer 2" and dead["epoch"] == 1


def test_a_saturated_softmax_is_flagged():
    spec = ModelSpec(4, (8,), 3, activation="tanh", batch_norm=False)
    state = copy_state(new_state(spec, 0))
    state.params["W2"] *= 1e4
    result = train_segment(state, TrainConfig(optimizer="sgd", learning_rate=1e-6), DATA, 2,
                           health_every=1)
    [flag] = [f for f in diagnose(result.metrics) if f["kind"] == "softmax_saturated"]
    assert flag["value"] == pytest.approx(result.metrics[-1]["health"]["confident_wrong"])
    assert flag["value"] >= 0.2


def test_a_dead_net_is_flagged_as_not_learning():
    spec = ModelSpec(4, (8,), 3, batch_norm=False)
    state = copy_state(new_state(spec, 0))
    state.params["b1"][:] = -1e3  # every hidden unit dead: the output never changes
    result = train_segment(state, TrainConfig(optimizer="sgd", learning_rate=1e-3), DATA, 6,
                           health_every=2)
    assert kinds(result) == ["dead_relus", "no_learning"]
    assert np.isclose(diagnose(result.metrics)[0]["value"], 1.0)
