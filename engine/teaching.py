"""The inspector's teaching view, Playground-style: a 2-D model's decision boundary at each
kept epoch of a babysitting lineage, and what every hidden layer does with one input.

Plain NumPy and storage reads; the page only draws (``app/views/teaching.py``).
"""

from __future__ import annotations

import sqlite3

import numpy as np

from engine.introspect import trace_forward
from engine.nn import layers
from engine.nn.model import ModelSpec, predict_proba

Arrays = dict[str, np.ndarray]


def hidden_activations(
    spec: ModelSpec, params: Arrays, buffers: Arrays, x: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """One input x (n_inputs,) through the model in evaluation mode: each hidden layer's
    activations (H_i,) after its nonlinearity (and batch norm), and the class probabilities
    (C,)."""
    X = np.asarray(x, dtype=spec.dtype).reshape(1, -1)
    traces, proba = trace_forward(spec, params, buffers, X, training=False)
    act = layers.ACTIVATIONS[spec.activation][0]
    out = []
    for t in traces:
        i = t.layer
        a = params[f"gamma{i}"] * t.z_hat + params[f"beta{i}"] if spec.batch_norm else t.z
        out.append(np.asarray(act(a)[0][0], dtype=np.float64))
    return out, np.asarray(proba[0], dtype=np.float64)


def lineage_checkpoints(conn: sqlite3.Connection, session_id: int) -> list[dict]:
    """The current lineage's nodes that still have a checkpoint, root to head:
    ``[{"node_id", "epoch", "val_loss"}]`` (what the epoch slider runs over)."""
    from engine import babysit
    from engine.storage import sessions as store

    view = babysit.session_view(conn, session_id)
    return [{"node_id": n["id"], "epoch": n["epoch"], "val_loss": n["val_loss"]}
            for n in store.lineage(conn, view["head_node_id"]) if n["checkpoint_id"] is not None]


def boundary_at(
    conn: sqlite3.Connection, session_id: int, node_id: int, grid: np.ndarray
) -> np.ndarray:
    """Class probabilities (G, C) of the session's model at ``node_id`` on grid points (G, 2)
    (standardised coordinates, as ``engine.data.views.grid_for_boundary`` gives them)."""
    from engine import babysit

    state = babysit.load_state_at(conn, node_id)
    return predict_proba(state.spec, state.params, state.buffers, grid)
