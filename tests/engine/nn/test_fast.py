"""The allocation-free step against the reference forward/backward, and its allocations."""

from __future__ import annotations

import tracemalloc
from contextlib import nullcontext

import numpy as np
import pytest

from engine.nn import ModelSpec, TrainConfig, init_params
from engine.nn.arena import Arena
from engine.nn.fast import Workspace, count_correct, make_targets
from engine.nn.losses import l2_penalty
from engine.nn.model import data_loss, forward, loss_and_grads
from engine.nn.optim import RULES, SLOTS, settle

CASES = [
    # (n_inputs, hidden, n_classes, activation, batch_norm, dropout, N)
    (4, (7, 6), 5, "relu", True, 0.0, 9),
    (4, (7, 6), 2, "relu", True, 0.3, 9),
    (3, (5,), 3, "leaky_relu", False, 0.2, 6),
    (3, (5, 4), 2, "tanh", True, 0.0, 1),  # batch of one
    (2, (8,), 4, "sigmoid", True, 0.5, 12),
    (5, (), 3, "relu", True, 0.0, 7),
    (5, (), 2, "relu", False, 0.0, 7),
]


def setup(case, dtype, seed=0):
    n_in, hidden, C, act, bn, p, N = case
    spec = ModelSpec(n_in, hidden, C, activation=act, batch_norm=bn, dtype=dtype)
    rng = np.random.default_rng(seed)
    params, buffers = init_params(spec, rng)
    for name in params:
        if not name.startswith("W"):
            params[name] = params[name] + rng.standard_normal(params[name].shape).astype(dtype)
    buffers = {k: (v + rng.uniform(0, 1, v.shape)).astype(dtype) for k, v in buffers.items()}
    X = rng.standard_normal((N, n_in)).astype(dtype)
    y = rng.integers(0, C, N)
    return spec, params, buffers, X, y


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 2e-4)])
def test_fast_loss_and_grads_match_the_reference(case, dtype, rtol):
    spec, params, buffers, X, y = setup(case, dtype)
    p = case[5]
    ref_loss, ref_grads, ref_buffers = loss_and_grads(
        spec, params, buffers, X, y, dropout=p, rng=np.random.default_rng(9), bn_momentum=0.8)
    arena = Arena(spec, "adam")
    arena.load(params, buffers, {})
    ws = Workspace(arena, len(X), training=True)
    ws.configure(TrainConfig(dropout=p, bn_momentum=0.8), np.random.default_rng(9))
    mark = np.empty((len(X), 1), dtype)
    loss = ws.loss_and_grads(X, make_targets(spec.n_classes, y, dtype), mark)
    assert loss == pytest.approx(ref_loss, rel=rtol)
    for name, g in ref_grads.items():  # the same dropout masks: drawn the same way
        scale = max(np.abs(g).max(), 1e-3)
        np.testing.assert_allclose(arena.grads[name], g, rtol=rtol, atol=rtol * scale,
                                   err_msg=name)
    scores, _, _ = forward(spec, params, buffers, X, training=True, dropout=p,
                           rng=np.random.default_rng(9))
    pred = (scores[:, 0] > 0) if spec.n_classes == 2 else scores.argmax(axis=1)
    np.testing.assert_array_equal(mark[:, 0], pred == y)
    assert count_correct(mark) == np.sum(pred == y)
    # running averages: the batch statistics the step folds in
    for name in ref_buffers:
        kept = 0.8 * buffers[name]
        np.testing.assert_allclose(kept + 0.2 * arena.stats[name], ref_buffers[name], rtol=rtol)


@pytest.mark.parametrize("case", CASES)
def test_fast_evaluation_matches_the_reference(case):
    spec, params, buffers, X, y = setup(case, "float64")
    arena = Arena(spec, "sgd")
    arena.load(params, buffers, {})
    total, correct = Workspace(arena, len(X)).evaluate(X, make_targets(spec.n_classes, y,
                                                                       "float64"))
    scores, _, _ = forward(spec, params, buffers, X, training=False)
    assert total / len(X) == pytest.approx(data_loss(spec, scores, y)[0], rel=1e-10)
    pred = (scores[:, 0] > 0) if spec.n_classes == 2 else scores.argmax(axis=1)
    assert correct == np.sum(pred == y)


@pytest.mark.parametrize("optimizer", list(RULES))
def test_fast_step_matches_reference_update(optimizer):
    case = (4, (6, 5), 3, "relu", True, 0.25, 8)
    spec, params, buffers, X, y = setup(case, "float64")
    config = TrainConfig(optimizer=optimizer, learning_rate=0.05, l2=0.1, dropout=0.25,
                         bn_momentum=0.7)
    # reference: grads (+ L2) and the rule applied per parameter
    ref = {k: v.copy() for k, v in params.items()}
    slots = {k: tuple(np.zeros_like(v) for _ in SLOTS[optimizer]) for k, v in ref.items()}
    lags = dict.fromkeys(ref, 0)
    rng = np.random.default_rng(4)
    ref_buffers = buffers
    for t in (1, 2):
        _, grads, ref_buffers = loss_and_grads(spec, ref, ref_buffers, X, y, l2=0.1,
                                               dropout=0.25, rng=rng, bn_momentum=0.7)
        for k in ref:
            lags[k] = RULES[optimizer](ref[k], grads[k], slots[k], 0.05, t, config,
                                       np.empty_like(ref[k]), lags[k])
    for k in ref:
        settle(optimizer, slots[k], lags[k], config)
    # fast
    arena = Arena(spec, optimizer)
    arena.load(params, buffers, {})
    ws = Workspace(arena, len(X), config=config, rng=np.random.default_rng(4))
    target, mark = make_targets(3, y, "float64"), np.empty((len(X), 1))
    for _ in range(2):
        ws.step(X, target, mark, 0.05)
    assert arena.step == 2
    with pytest.raises(RuntimeError, match="settle them first") if arena.lag else nullcontext():
        arena.snapshot()
    ws.settle()
    assert arena.lag == 0
    for k, v in ref.items():
        np.testing.assert_allclose(arena.params[k], v, rtol=1e-9, atol=1e-12, err_msg=k)
    for k, v in ref_buffers.items():
        np.testing.assert_allclose(arena.buffers[k], v, rtol=1e-9, err_msg=k)
    _, unpacked = l2_penalty(params, 0.1), arena.unpack(arena.snapshot())
    for slot_name, k in ((s, k) for s in SLOTS[optimizer] for k in params):
        i = SLOTS[optimizer].index(slot_name)
        np.testing.assert_allclose(unpacked[2][f"{slot_name}.{k}"], slots[k][i], rtol=1e-9,
                                   atol=1e-12)


@pytest.mark.parametrize("hidden, batch, dropout", [((256, 256), 128, 0.0), ((256, 256), 128, 0.2)])
def test_steady_state_step_allocates_no_arrays(hidden, batch, dropout):
    """No allocation of even half an activation buffer (128 KiB here) during steady-state steps,
    and no growth. What remains is small and transient: Python views and floats, and the
    iterator buffers (at most 8192 elements) NumPy uses for broadcasting ufuncs."""
    spec = ModelSpec(64, hidden, 10)
    rng = np.random.default_rng(0)
    params, buffers = init_params(spec, rng)
    arena = Arena(spec, "adam")
    arena.load(params, buffers, {})
    ws = Workspace(arena, batch, config=TrainConfig(l2=1e-4, dropout=dropout), rng=rng)
    X = rng.standard_normal((1000, 64)).astype(np.float32)
    target = make_targets(10, rng.integers(0, 10, batch), "float32")
    rows = [rng.permutation(1000)[:batch] for _ in range(5)]
    mark = np.empty((batch, 1), np.float32)

    def steps(k):
        for r in rows * k:
            ws.step(ws.gather(X, r), target, mark, 1e-3)

    steps(2)  # warm up
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        steps(4)
        after_20, peak = tracemalloc.get_traced_memory()
        steps(8)
        after_60, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    smallest_buffer = batch * min(hidden) * 4
    assert peak - base < smallest_buffer // 2, (base, peak)
    assert after_60 - after_20 < 512
