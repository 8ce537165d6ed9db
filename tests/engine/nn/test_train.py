"""train_segment: bitwise resume, no mutation, divergence, stopping, metrics, caching."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from engine.nn import (
    ModelSpec,
    TrainConfig,
    new_state,
    state_from_bytes,
    state_to_bytes,
    train,
    train_segment,
)
from tests.engine.nn.checks import assert_states_equal, without_seconds
from tests.engine.nn.conftest import blobs

SPEC = ModelSpec(5, (6, 4), 3)
METRIC_KEYS = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "learning_rate",
               "seconds"}


@pytest.mark.parametrize("config, spec", [
    (TrainConfig(batch_size=16, dropout=0.3), SPEC),  # 70 rows: a partial batch of 6
    (TrainConfig(optimizer="momentum", batch_size=9, dropout=0.5, l2=1e-3,
                 decay="exponential", decay_rate=0.9), SPEC),
    (TrainConfig(optimizer="rmsprop", batch_size=70, dropout=0.1),
     ModelSpec(5, (6, 4), 3, batch_norm=False, activation="leaky_relu")),
    (TrainConfig(optimizer="sgd", learning_rate=0.05, batch_size=32, dropout=0.2),
     ModelSpec(5, (8,), 3, activation="tanh", dtype="float64")),
])
@pytest.mark.parametrize("fresh_trainer", [False, True])
def test_resume_from_checkpoint_is_bitwise_identical(tiny_data, config, spec, fresh_trainer):
    """Stop at epoch 2, serialise, resume to 5 == 5 epochs without a stop (dropout and
    shuffling included), with the trainer reused or rebuilt between segments."""
    start = new_state(spec, 11)
    straight = train_segment(start, config, tiny_data, 5)
    first = train_segment(start, config, tiny_data, 2)
    if fresh_trainer:
        train.clear_cache()
    resumed = train_segment(state_from_bytes(state_to_bytes(first.state)), config, tiny_data, 3)
    assert straight.status == first.status == resumed.status == "ok"
    assert_states_equal(straight.state, resumed.state, same_timing=False)
    assert without_seconds(straight.metrics) == without_seconds(first.metrics + resumed.metrics)


def test_train_segment_does_not_mutate_its_input(tiny_data):
    state = train_segment(new_state(SPEC, 1), TrainConfig(dropout=0.2), tiny_data, 1).state
    before = state_to_bytes(state)
    arrays = {k: v for k, v in state.params.items()}
    for config in (TrainConfig(dropout=0.2), TrainConfig(optimizer="sgd", learning_rate=1e3,
                                                         batch_size=16)):
        train_segment(state, config, tiny_data, 2)
        assert state_to_bytes(state) == before
        assert all(state.params[k] is v for k, v in arrays.items())


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_learning_rate_1e3_diverges_with_a_message_and_no_nan(tiny_data, optimizer):
    start = new_state(SPEC, 3)
    result = train_segment(start, TrainConfig(optimizer=optimizer, learning_rate=1e3,
                                              batch_size=16), tiny_data, 10)
    assert result.status == "diverged"
    assert re.fullmatch(
        r"(loss became (nan|inf|-inf)|weights became non-finite) at epoch (\d+), step (\d+) "
        r"\(learning rate 1000\)", result.message), result.message
    failed_epoch = int(re.search(r"at epoch (\d+)", result.message).group(1))
    assert len(result.metrics) == failed_epoch - 1 == result.state.epoch
    for row in result.metrics:
        assert all(math.isfinite(v) for v in row.values())
    assert all(np.isfinite(p).all() for p in result.state.params.values())


def test_a_diverged_epoch_is_not_applied(tiny_data):
    """The returned state is the last good epoch's, bit for bit."""
    config = TrainConfig(optimizer="sgd", learning_rate=100.0, batch_size=16)
    start = new_state(SPEC, 3)
    result = train_segment(start, config, tiny_data, 30)
    assert result.status == "diverged" and result.state.epoch >= 1
    good = train_segment(start, config, tiny_data, result.state.epoch)
    assert good.status == "ok"
    assert_states_equal(result.state, good.state, same_timing=False)
    first_epoch = train_segment(result.state, TrainConfig(optimizer="sgd", learning_rate=1e6,
                                                          batch_size=16), tiny_data, 3)
    assert first_epoch.status == "diverged" and first_epoch.metrics == []
    assert_states_equal(first_epoch.state, result.state)


def test_non_finite_data_ends_the_segment_as_diverged(tiny_data):
    X = tiny_data.X_train.copy()
    X[3, 1] = np.inf
    bad = dataclasses.replace(tiny_data, X_train=X)
    result = train_segment(new_state(SPEC, 0), TrainConfig(batch_size=100), bad, 2)
    assert result.status == "diverged"
    assert result.message == "loss became nan at epoch 1, step 1 (learning rate 0.001)"


def test_a_non_finite_validation_loss_ends_the_segment(tiny_data):
    X_val = tiny_data.X_val.copy()
    X_val[0, 0] = np.nan
    bad = dataclasses.replace(tiny_data, X_val=X_val)
    result = train_segment(new_state(SPEC, 0), TrainConfig(), bad, 2)
    assert result.status == "diverged" and result.metrics == []
    assert result.message == "validation loss became nan at epoch 1 (learning rate 0.001)"


def test_should_stop_is_polled_between_epochs(tiny_data):
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 2

    result = train_segment(new_state(SPEC, 0), TrainConfig(), tiny_data, 10,
                           should_stop=should_stop)
    assert result.status == "stopped" and result.message == "stopped after epoch 2"
    assert len(result.metrics) == 2 and result.state.epoch == 2 and len(calls) == 2


def test_metrics_and_history(tiny_data):
    config = TrainConfig(learning_rate=0.01, decay="step", decay_rate=0.5, decay_every=2)
    first = train_segment(new_state(SPEC, 0), config, tiny_data, 3)
    second = train_segment(first.state, config, tiny_data, 2)
    rows = first.metrics + second.metrics
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["learning_rate"] for r in rows] == pytest.approx([0.01, 0.01, 0.005, 0.005,
                                                                 0.0025])
    for r in rows:
        assert set(r) == METRIC_KEYS
        assert all(type(v) is (int if k == "epoch" else float) for k, v in r.items())
        assert 0 <= r["train_acc"] <= 1 and 0 <= r["val_acc"] <= 1 and r["seconds"] > 0
    assert without_seconds(second.state.history) == without_seconds(rows)
    assert first.state.history == first.metrics  # the state's history is its own copy
    assert first.state.history[0] is not first.metrics[0]


def test_training_accuracy_counts_the_mini_batches(tiny_data):
    """With lr tiny the model barely moves: training metrics (batch statistics) and the
    epoch's accuracy match a direct count in training mode."""
    result = train_segment(new_state(SPEC, 0), TrainConfig(batch_size=70, learning_rate=1e-12),
                           tiny_data, 1)
    from engine.nn.model import data_loss, forward

    state = new_state(SPEC, 0)
    scores, _, _ = forward(SPEC, state.params, state.buffers, tiny_data.X_train, training=True)
    loss, _ = data_loss(SPEC, scores, tiny_data.y_train)
    acc = np.mean(scores.argmax(axis=1) == tiny_data.y_train)
    assert result.metrics[0]["train_loss"] == pytest.approx(loss, rel=1e-5)
    assert result.metrics[0]["train_acc"] == pytest.approx(acc)


def test_switching_optimizer_starts_its_state_from_zero(tiny_data):
    adam = train_segment(new_state(SPEC, 0), TrainConfig(), tiny_data, 1).state
    assert {k.split(".")[0] for k in adam.opt_state} == {"step", "m", "v"}
    sgd = train_segment(adam, TrainConfig(optimizer="sgd"), tiny_data, 1).state
    assert set(sgd.opt_state) == {"step"} and int(sgd.opt_state["step"]) == 2
    back = train_segment(sgd, TrainConfig(optimizer="momentum"), tiny_data, 1).state
    assert {k.split(".")[0] for k in back.opt_state} == {"step", "velocity"}


def test_the_cached_trainer_never_serves_another_dataset(tiny_data):
    other = blobs(70, 20, 5, 3, seed=99)  # same shapes, other values
    config = TrainConfig(batch_size=16)
    train_segment(new_state(SPEC, 0), config, tiny_data, 1)
    via_cache = train_segment(new_state(SPEC, 0), config, other, 2)
    train.clear_cache()
    fresh = train_segment(new_state(SPEC, 0), config, other, 2)
    assert_states_equal(via_cache.state, fresh.state, same_timing=False)


@pytest.mark.parametrize("batch_size", [1, 23])  # 70 = 3 * 23 + 1: a last batch of one row
def test_batches_of_one_row_stay_finite(tiny_data, batch_size):
    result = train_segment(new_state(SPEC, 0), TrainConfig(batch_size=batch_size, dropout=0.2),
                           tiny_data, 2)
    assert result.status == "ok"
    assert int(result.state.opt_state["step"]) == 2 * math.ceil(70 / batch_size)
    assert all(math.isfinite(v) for row in result.metrics for v in row.values())


def test_trainers_are_reused_for_interleaved_segments(tiny_data):
    def cached():
        return list(train._cache.trainers.values())

    a, b = TrainConfig(batch_size=16), TrainConfig(batch_size=32, learning_rate=0.01)
    state = new_state(SPEC, 0)
    train_segment(state, a, tiny_data, 1)
    train_segment(state, b, tiny_data, 1)
    first = cached()  # (the references keep the objects, and so their ids, alive)
    train_segment(state, a, tiny_data, 1)
    train_segment(state, TrainConfig(batch_size=32), tiny_data, 1)  # only lr differs from b
    assert len(first) == 2 and {id(t) for t in cached()} == {id(t) for t in first}
    for size in (8, 9, 10):
        train_segment(state, TrainConfig(batch_size=size), tiny_data, 1)
    now = cached()
    assert len(now) == train.CACHED_TRAINERS
    assert [t.key[2] for t in now] == [8, 9, 10]
    assert not {id(t) for t in first} & {id(t) for t in now}


def test_batch_larger_than_the_data_and_float64(tiny_data):
    spec = ModelSpec(5, (6,), 3, dtype="float64")
    result = train_segment(new_state(spec, 0), TrainConfig(batch_size=1000), tiny_data, 3)
    assert result.status == "ok" and int(result.state.opt_state["step"]) == 3
    assert result.state.params["W1"].dtype == np.float64


@pytest.mark.parametrize("data_change, message", [
    (dict(X_train=np.zeros((70, 4), np.float32)), r"X_train must have shape \(N, 5\)"),
    (dict(n_classes=4), r"the model has n_classes=3 but the dataset has 4"),
    (dict(X_val=np.zeros((0, 5), np.float32), y_val=np.zeros(0, np.int64)), "no val rows"),
    (dict(y_train=np.full(70, 3)), r"y_train must be integer labels in 0..2"),
])
def test_dataset_mismatches_are_explained(tiny_data, data_change, message):
    bad = dataclasses.replace(tiny_data, **data_change)
    with pytest.raises(ValueError, match=message):
        train_segment(new_state(SPEC, 0), TrainConfig(), bad, 1)
    with pytest.raises(ValueError, match="n_epochs must be an integer >= 0, got -1"):
        train_segment(new_state(SPEC, 0), TrainConfig(), tiny_data, -1)
