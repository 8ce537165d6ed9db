"""train_stacked: each member of a stack trains as it would alone (train_segment is the oracle)."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest

from engine.nn import ModelSpec, TrainConfig, new_state, train_segment
from engine.nn.stacked import StackTrainer, max_members, stack_bytes, train_stacked
from engine.nn.stacked_optim import Hyper
from engine.nn.state import state_from_bytes, state_to_bytes
from tests.engine.nn.checks import assert_states_equal, without_seconds

METRIC_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "learning_rate")


def members(optimizer: str, *, dropout: float = 0.0, n: int = 3) -> list[TrainConfig]:
    """n configs of one optimizer and batch size, every other knob different per member."""
    return [
        TrainConfig(
            learning_rate=0.01 * (j + 1), optimizer=optimizer, batch_size=16, l2=1e-3 * j,
            dropout=dropout * (j % 2), bn_momentum=0.8 + 0.05 * j, momentum=0.8 + 0.05 * j,
            beta1=0.85 + 0.03 * j, beta2=0.99 + 0.004 * j,
            decay=("none", "inverse", "exponential")[j % 3], decay_rate=(0.0, 0.3, 0.7)[j % 3],
        )
        for j in range(n)
    ]


def assert_close_states(solo, stacked, tol: float) -> None:
    """Same keys, shapes and dtypes (the solo format); values within tol (relative to 1)."""
    assert stacked.spec == solo.spec and stacked.epoch == solo.epoch
    assert stacked.rng_state == solo.rng_state
    for a, b in ((solo.params, stacked.params), (solo.buffers, stacked.buffers),
                 (solo.opt_state, stacked.opt_state)):
        assert list(a) == list(b)
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
            scale = 1 + np.abs(a[k].astype(np.float64))
            assert np.max(np.abs(a[k] - b[k]) / scale, initial=0) <= tol, k


def assert_close_metrics(solo_rows, stacked_rows, tol: float) -> None:
    assert [r["epoch"] for r in solo_rows] == [r["epoch"] for r in stacked_rows]
    for a, b in zip(solo_rows, stacked_rows):
        for k in METRIC_KEYS:
            assert abs(a[k] - b[k]) <= tol * (1 + abs(a[k])), (k, a[k], b[k])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "rmsprop", "adam"])
@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_float64_members_equal_training_alone(tiny_data, optimizer, batch_norm, dropout):
    """Different widths (padded), learning rates, decays, L2, momenta, betas, BN momenta and
    dropout rates: every member's weights, running averages, optimizer slots, generator and
    metrics match training it alone, to 1e-10."""
    widths = [(8, 6), (5, 6), (8, 3)]
    specs = [ModelSpec(5, w, 3, batch_norm=batch_norm, dtype="float64") for w in widths]
    states = [new_state(s, 10 + j) for j, s in enumerate(specs)]
    configs = members(optimizer, dropout=dropout)
    results = train_stacked(states, configs, tiny_data, 3)
    for state, config, result in zip(states, configs, results):
        solo = train_segment(state, config, tiny_data, 3)
        assert (result.status, result.message) == (solo.status, solo.message) == ("ok", "")
        assert_close_states(solo.state, result.state, 1e-10)
        assert_close_metrics(solo.metrics, result.metrics, 1e-10)


def test_wide_rows_equal_training_alone(tiny_data):
    """Rows of FULL_WIDTH entries or more take L2 as a (P, 1) column over the weights (not the
    full matrix) and keep their knobs as columns: still every member as alone, to 1e-10."""
    from engine.nn.stacked_arena import StackArena
    from engine.nn.stacked_optim import FULL_WIDTH

    specs = [ModelSpec(5, w, 3, dtype="float64") for w in [(64, 16), (40, 16), (64, 9)]]
    assert StackArena(specs, "adam").w.shape[1] >= FULL_WIDTH
    states = [new_state(s, j) for j, s in enumerate(specs)]
    configs = members("adam", dropout=0.2)
    configs[0] = dataclasses.replace(configs[0], l2=3e-3)
    for state, config, result in zip(states, configs, train_stacked(states, configs,
                                                                    tiny_data, 2)):
        solo = train_segment(state, config, tiny_data, 2)
        assert_close_states(solo.state, result.state, 1e-10)
        assert_close_metrics(solo.metrics, result.metrics, 1e-10)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 1e-4)])
def test_batch_norm_sums_by_einsum_equal_training_alone(tiny_data, monkeypatch, dtype, tol):
    """Large layers sum their batch-norm products over the batch by einsum (forced here for
    every layer): still every member as alone."""
    import engine.nn.stacked_step as stacked_step

    monkeypatch.setattr(stacked_step, "EINSUM_ELEMENTS", 0)
    specs = [ModelSpec(5, w, 3, dtype=dtype) for w in [(8, 6), (5, 6), (8, 3)]]
    states = [new_state(s, j) for j, s in enumerate(specs)]
    configs = members("adam", dropout=0.3)
    for state, config, result in zip(states, configs, train_stacked(states, configs,
                                                                    tiny_data, 2)):
        solo = train_segment(state, config, tiny_data, 2)
        assert_close_states(solo.state, result.state, tol)
        assert_close_metrics(solo.metrics, result.metrics, tol)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "leaky_relu"])
def test_other_activations_and_two_classes(binary_data, activation):
    """The sigmoid output (two classes) and the other activations, padded units included."""
    specs = [ModelSpec(3, w, 2, activation=activation, dtype="float64") for w in [(7,), (4,)]]
    states = [new_state(s, j) for j, s in enumerate(specs)]
    configs = members("adam", dropout=0.2, n=2)
    for state, config, result in zip(states, configs,
                                     train_stacked(states, configs, binary_data, 2)):
        solo = train_segment(state, config, binary_data, 2)
        assert_close_states(solo.state, result.state, 1e-10)
        assert_close_metrics(solo.metrics, result.metrics, 1e-10)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_float32_members_within_stated_tolerance(tiny_data, optimizer):
    """float32: within 1e-4 relative to (1 + |value|) after 3 epochs (rounding only: the stacked
    sums and Adam's undeferred decays round differently from the solo step)."""
    specs = [ModelSpec(5, w, 3) for w in [(16, 8), (16, 8), (9, 8)]]
    states = [new_state(s, j) for j, s in enumerate(specs)]
    configs = members(optimizer, dropout=0.2)
    for state, config, result in zip(states, configs,
                                     train_stacked(states, configs, tiny_data, 3)):
        solo = train_segment(state, config, tiny_data, 3)
        assert_close_states(solo.state, result.state, 1e-4)
        assert_close_metrics(solo.metrics, result.metrics, 1e-4)


@pytest.mark.parametrize("batch_norm, optimizer, dropout", [(False, "momentum", 0.0),
                                                          (True, "adam", 0.3)])
def test_a_diverging_member_leaves_with_the_solo_message(tiny_data, batch_norm, optimizer,
                                                         dropout):
    """The diverged member trains on in its own row to the epoch's end (its losses are checked
    once an epoch): the others are untouched, its message names its first non-finite step."""
    spec = ModelSpec(5, (8,), 3, batch_norm=batch_norm, dtype="float64")
    states = [new_state(spec, j) for j in range(3)]
    configs = [TrainConfig(learning_rate=lr, optimizer=optimizer, batch_size=16, dropout=dropout)
               for lr in (0.01, 1e30 if optimizer == "momentum" else 1e300, 0.05)]
    results = train_stacked(states, configs, tiny_data, 4)
    for state, config, result in zip(states, configs, results):
        solo = train_segment(state, config, tiny_data, 4)
        assert (result.status, result.message) == (solo.status, solo.message)
        assert_close_states(solo.state, result.state, 1e-10)  # the last good epoch
        assert len(result.metrics) == len(solo.metrics)
    assert results[1].status == "diverged"
    assert f"learning rate {configs[1].learning_rate:g})" in results[1].message
    assert [r.status for r in results] == ["ok", "diverged", "ok"]
    assert all(np.isfinite(r["val_loss"]) for res in results for r in res.metrics)


def test_a_segment_split_in_two_is_bitwise_the_same(tiny_data):
    spec = ModelSpec(5, (8, 6), 3)
    states = [new_state(spec, j) for j in range(2)]
    configs = members("adam", dropout=0.2, n=2)
    whole = train_stacked(states, configs, tiny_data, 4)
    first = train_stacked(states, configs, tiny_data, 1)
    # through the checkpoint bytes, as a runner resumes
    resumed = [state_from_bytes(state_to_bytes(r.state)) for r in first]
    rest = train_stacked(resumed, configs, tiny_data, 3)
    for a, b in zip(whole, rest):
        assert_states_equal(a.state, b.state, same_timing=False)


def test_members_checkpoint_in_the_solo_format_and_train_on_alone(tiny_data):
    spec = ModelSpec(5, (8, 6), 3, dtype="float64")
    states = [new_state(spec, j) for j in range(2)]
    configs = members("adam", n=2)
    stacked = train_stacked(states, configs, tiny_data, 2)[1].state
    solo = train_segment(states[1], configs[1], tiny_data, 2).state
    back = state_from_bytes(state_to_bytes(stacked))
    assert_states_equal(back, stacked)
    assert without_seconds(back.history) == without_seconds(stacked.history)
    on_alone = train_segment(back, configs[1], tiny_data, 1).state
    assert_close_states(train_segment(solo, configs[1], tiny_data, 1).state, on_alone, 1e-10)


def test_inputs_are_not_mutated_and_stop_ends_every_member(tiny_data):
    spec = ModelSpec(5, (8,), 3)
    states = [new_state(spec, j) for j in range(2)]
    before = [state_to_bytes(s) for s in states]
    calls = []
    results = train_stacked(states, members("sgd", n=2), tiny_data, 5,
                            should_stop=lambda: calls.append(1) or len(calls) >= 2)
    assert [state_to_bytes(s) for s in states] == before
    assert [(r.status, r.message, r.state.epoch) for r in results] == [
        ("stopped", "stopped after epoch 2", 2)] * 2


def test_health_is_measured_per_member(tiny_data):
    spec = ModelSpec(5, (8,), 3, dtype="float64")
    states = [new_state(spec, j) for j in range(2)]
    configs = members("adam", n=2)
    results = train_stacked(states, configs, tiny_data, 2, health_every=2)
    for state, config, result in zip(states, configs, results):
        solo = train_segment(state, config, tiny_data, 2, health_every=2)
        assert "health" not in result.metrics[0]
        got, want = result.metrics[1]["health"], solo.metrics[1]["health"]
        assert set(got) == set(want)
        for k, v in want.items():
            assert (v is None) == (got[k] is None), k
            if v is not None:
                assert abs(got[k] - v) <= 1e-8 * (1 + abs(v)), k


def test_members_must_share_optimizer_batch_and_shape(tiny_data):
    spec = ModelSpec(5, (8,), 3)
    states = [new_state(spec, 0), new_state(spec, 1)]
    with pytest.raises(ValueError, match="share the optimizer and the batch size"):
        train_stacked(states, [TrainConfig(optimizer="adam"), TrainConfig(optimizer="sgd")],
                      tiny_data, 1)
    other = new_state(ModelSpec(5, (8, 8), 3), 2)
    with pytest.raises(ValueError, match="differ only in their hidden widths"):
        train_stacked([states[0], other], [TrainConfig()] * 2, tiny_data, 1)
    with pytest.raises(ValueError, match="one config per state"):
        train_stacked(states, [TrainConfig()], tiny_data, 1)


def test_steady_state_stacked_step_allocates_no_arrays(tiny_data):
    """As the solo step: nothing of even half an activation buffer (256 KiB here), and no
    growth. What remains is transient: the iterator buffers (at most 8192 elements an operand,
    whatever the array's size) NumPy takes for ufuncs that broadcast a member's row."""
    p, batch = 16, 32
    specs = [ModelSpec(5, (256, 128), 3) for _ in range(p)]
    configs = [TrainConfig(l2=1e-4, dropout=0.2, batch_size=batch) for _ in range(p)]
    trainer = StackTrainer(specs, "adam", batch, tiny_data)
    rngs = [np.random.default_rng(j) for j in range(p)]
    for j in range(p):
        state = new_state(specs[j], j)
        trainer.arena.load(j, state.params, state.buffers, state.opt_state)
    hyper = Hyper(configs, "float32")
    hyper.set_lr(np.full(p, 1e-3))
    dropout, bn = np.array([c.dropout for c in configs]), np.full(p, 0.9)
    for ws in trainer.workspaces.values():
        ws.configure(hyper, dropout, bn, rngs)
    trainer.shuffle(rngs, [True] * p)
    ws, rows, target, before, mark = trainer.batches[0]

    def steps(k):
        for _ in range(k):
            ws.step(ws.gather(trainer.X_train, rows), target, before, mark)

    steps(3)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        steps(10)
        after_10, peak = tracemalloc.get_traced_memory()
        steps(30)
        after_40, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    smallest_buffer = batch * p * 128 * 4
    assert peak - base < smallest_buffer // 2, (base, peak)
    assert after_40 - after_10 < 512


def test_memory_estimate_bounds_what_a_stack_allocates(tiny_data):
    specs = [ModelSpec(5, (32, 16), 3)] * 4
    trainer = StackTrainer(specs, "adam", 16, tiny_data)
    held = trainer.arena.nbytes() + sum(
        a.nbytes for ws in trainer.workspaces.values() for layer in ws.hidden
        for a in vars(layer).values() if isinstance(a, np.ndarray) and a.base is None)
    estimate = stack_bytes(specs, "adam", 16, len(tiny_data.X_train), len(tiny_data.X_val))
    assert held <= estimate
    one = stack_bytes(specs[:1], "adam", 16, 70, 20)
    assert max_members(specs[0], "adam", 16, 70, 20, bound=10 * one) == 10


@pytest.mark.parametrize("optimizer", ["momentum", "rmsprop", "adam"])
def test_widened_knobs_update_bitwise_as_columns(optimizer):
    """Hyper.widen (full (P, S) knobs on a narrow arena) changes the speed, not one bit."""
    from engine.nn.stacked_optim import update

    configs = members(optimizer, n=3)
    rng = np.random.default_rng(0)
    w0, g0 = rng.standard_normal((2, 3, 300)).astype("float32")
    slots0 = tuple(np.abs(rng.standard_normal((3, 300))).astype("float32") for _ in range(2))
    out = []
    for widen in (False, True):
        hyper = Hyper(configs, "float32")
        if widen:
            hyper.widen(w0.shape)
            assert hyper.beta1.shape == w0.shape
        hyper.set_lr(np.array([c.learning_rate for c in configs]))
        w, g = w0.copy(), g0.copy()
        slots = tuple(s.copy() for s in slots0)[: 2 if optimizer == "adam" else 1]
        for step in (1, 2, 3):
            hyper.for_step(np.full(3, step))
            update(w, g, slots, hyper, np.empty_like(w))
        out.append((w, *slots))
    for a, b in zip(*out):
        assert np.array_equal(a, b)


def test_two_class_loss_is_logaddexp_for_any_logit(binary_data):
    """The two-class loss (softplus in SIMD steps) equals np.logaddexp(0, u) and its gradient
    stays finite, for logits from -1e4 to 1e4 (no overflow where exp(u) would be inf)."""
    from engine.nn.stacked_step import StackWorkspace

    specs = [ModelSpec(3, (4,), 2, dtype="float64")] * 2
    trainer = StackTrainer(specs, "sgd", 8, binary_data)
    ws = StackWorkspace(trainer.arena, 8, training=True)
    z = np.array([-1e4, -50.0, -1.0, 0.0, 1e-9, 2.0, 60.0, 1e4])
    ws.s[:, 0, 0], ws.s[:, 1, 0] = z, -z
    sign = np.where(np.arange(8) % 2, -1.0, 1.0)  # 1 - 2y
    target = np.broadcast_to(sign[:, None, None], (8, 2, 1)).copy()
    mark = np.empty((8, 2), bool)
    loss = ws._loss(target, None, mark, True)
    assert np.isfinite(ws.ds).all()
    for j, zj in enumerate((z, -z)):
        u = sign * zj
        assert loss[j] == pytest.approx(np.logaddexp(0, u).sum(), rel=1e-12)
        sigmoid = np.exp(u - np.logaddexp(0, u))
        assert np.allclose(ws.ds[:, j, 0], sign * sigmoid / 8, rtol=1e-12, atol=0)
        assert np.array_equal(mark[:, j], (zj > 0) == (sign < 0))


def test_cache_rule_keeps_small_members_in_one_stack_and_splits_memory_bound_ones():
    """benchmarks/stacked.py --sizes: 2-16-16-2 (batch 32) gained up to 64 members, 64-64-10
    with BN (batch 64) lost from 32 to 64; the rule gives the first its full stack, splits the
    second, and a stack it gives fits the budget while twice it would not (above the floor)."""
    from engine.nn.stacked import CACHE_BUDGET, CACHE_FLOOR, cache_members, step_bytes

    small, bn = ModelSpec(2, (16, 16), 2, batch_norm=False), ModelSpec(64, (64,), 10)
    assert cache_members(small, "adam", 32) >= 64
    assert CACHE_FLOOR <= cache_members(bn, "adam", 64) < 64
    for spec, batch in ((small, 32), (bn, 64), (ModelSpec(64, (128,), 10), 64)):
        n, one = cache_members(spec, "adam", batch), step_bytes(spec, "adam", batch)
        assert n * one <= CACHE_BUDGET < 2 * n * one
    assert cache_members(ModelSpec(64, (2048,), 10), "adam", 256) == CACHE_FLOOR
