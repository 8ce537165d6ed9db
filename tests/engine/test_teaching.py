"""The teaching view's numbers: activations against a direct forward pass, the kept epochs of
a lineage and the boundary at one of them."""

from __future__ import annotations

import numpy as np

from engine import babysit
from engine.nn import ModelSpec, new_state
from engine.nn.model import predict_proba
from engine.storage.db import connect
from engine.teaching import boundary_at, hidden_activations, lineage_checkpoints


def test_activations_follow_a_forward_pass_by_hand():
    spec = ModelSpec(2, (5, 3), 3, batch_norm=False)
    state = new_state(spec, 0)
    p = state.params
    x = np.array([0.3, -1.2], np.float32)
    acts, proba = hidden_activations(spec, p, state.buffers, x)
    h1 = np.maximum(x @ p["W1"] + p["b1"], 0)
    h2 = np.maximum(h1 @ p["W2"] + p["b2"], 0)
    scores = h2 @ p["W3"] + p["b3"]
    expected = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    assert [a.shape for a in acts] == [(5,), (3,)]
    np.testing.assert_allclose(acts[0], h1, rtol=1e-5)
    np.testing.assert_allclose(acts[1], h2, rtol=1e-5)
    np.testing.assert_allclose(proba, expected, rtol=1e-5)
    assert (acts[0] >= 0).all()


def test_activations_with_batch_norm_use_the_running_averages():
    spec = ModelSpec(2, (4,), 2, activation="tanh")
    state = new_state(spec, 1)
    state.buffers["running_mean1"][:] = 0.5
    state.buffers["running_var1"][:] = 4.0
    p = state.params
    x = np.array([1.0, 2.0], np.float32)
    acts, proba = hidden_activations(spec, p, state.buffers, x)
    z = x @ p["W1"]
    a = np.tanh(p["gamma1"] * (z - 0.5) / np.sqrt(4.0 + 1e-5) + p["beta1"])
    np.testing.assert_allclose(acts[0], a, rtol=1e-5)
    np.testing.assert_allclose(proba, predict_proba(spec, p, state.buffers, x[None])[0],
                               rtol=1e-5)


def test_the_kept_epochs_of_the_lineage_and_a_boundary(db_path):
    conn = connect(db_path)
    sid = babysit.new_session(conn, name="t", model={"hidden": [8]},
                              dataset={"kind": "moons", "n_samples": 100, "seed": 0},
                              config={"learning_rate": 0.05, "batch_size": 32}, seed=0)
    babysit.execute(conn, sid, "run", {"epochs": 3})
    babysit.execute(conn, sid, "rollback", {"epoch": 1})
    babysit.execute(conn, sid, "run", {"epochs": 1})
    kept = lineage_checkpoints(conn, sid)
    assert [k["epoch"] for k in kept] == [0, 1, 2]  # the abandoned epochs 2-3 are not on it
    grid = np.array([[0.0, 0.0], [1.0, -1.0]], np.float32)
    first, last = (boundary_at(conn, sid, k["node_id"], grid) for k in (kept[0], kept[-1]))
    assert first.shape == (2, 2) and np.allclose(first.sum(axis=1), 1.0)
    assert not np.allclose(first, last)  # the boundary moved while it trained
