"""The inspector's teaching view: the decision boundary of a 2-D model at each kept epoch of a
babysitting lineage (a slider, or following the head live while it trains), and each hidden
layer's activations for a chosen input. ``app/app_pages/inspector.py`` calls ``teaching_tab``.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.charts.babysit import boundary_figure
from app.charts.teaching import activations_figure, mark_input
from app.common import get_conn
from app.live import live_part
from engine import babysit
from engine.data.views import grid_for_boundary, original_coordinates
from engine.introspect import Inspected
from engine.nn.model import predict_proba
from engine.teaching import boundary_at, hidden_activations, lineage_checkpoints

RESOLUTION = 80


def _input_picker(model: Inspected) -> tuple[np.ndarray, int]:
    d = model.dataset
    n = len(d.y_val)
    index = st.number_input(f"Input: a validation point (0 to {n - 1})", 0, n - 1, 0,
                            key=f"teach_input_{model.label}")
    return d.X_val[int(index)], int(index)


def _activations(model: Inspected, state, x: np.ndarray, index: int) -> None:
    acts, proba = hidden_activations(state.spec, state.params, state.buffers, x)
    d = model.dataset
    st.markdown(f"**What each hidden layer does with point #{index}** (true class "
                f"{d.class_names[int(d.y_val[index])]})")
    st.plotly_chart(activations_figure(acts, proba, d.class_names), key="teach_acts",
                    width="stretch")
    st.caption("Each cell is a unit: red fires, blue is negative, white is zero (a ReLU unit "
               "at zero passes nothing on). The last row is the softmax's verdict.")


def _boundary(model: Inspected, proba: np.ndarray, xx, yy, point, epoch: int) -> None:
    d = model.dataset
    fig = boundary_figure(xx, yy, proba, original_coordinates(d, d.X_train), d.y_train,
                          class_names=d.class_names, feature_names=d.feature_names)
    mark_input(fig, point, "the chosen input")
    st.markdown(f"**Decision boundary at epoch {epoch}**")
    st.plotly_chart(fig, key="teach_boundary", width="stretch")


def _session_epochs(session_id: int, model: Inspected, x, index, follow: bool) -> None:
    conn = get_conn()
    kept = lineage_checkpoints(conn, session_id)
    d = model.dataset
    xx, yy, grid = grid_for_boundary(d, resolution=RESOLUTION)
    point = original_coordinates(d, x[None])[0]
    if follow or len(kept) == 1:
        chosen = kept[-1]
    else:
        epochs = [k["epoch"] for k in kept]
        epoch = st.select_slider("Epoch (the kept checkpoints of the current lineage)", epochs,
                                 value=epochs[-1], key=f"teach_epoch_{session_id}")
        chosen = kept[epochs.index(epoch)]
    proba = boundary_at(conn, session_id, chosen["node_id"], grid)
    _boundary(model, proba, xx, yy, point, chosen["epoch"])
    _activations(model, babysit.load_state_at(conn, chosen["node_id"]), x, index)


def teaching_tab(model: Inspected, session_id: int | None) -> None:
    """The boundary over the epochs (a session) or at the trial's checkpoint, and the
    activations of one input."""
    d = model.dataset
    x, index = _input_picker(model)
    if d.X_train.shape[1] != 2:
        st.caption(f"No decision boundary: this dataset has {d.X_train.shape[1]} features "
                   "(boundaries are drawn for 2-D datasets). The activations still are.")
        _activations(model, model.state, x, index)
        return
    if session_id is None:
        xx, yy, grid = grid_for_boundary(d, resolution=RESOLUTION)
        s = model.state
        proba = predict_proba(s.spec, s.params, s.buffers, grid)
        _boundary(model, proba, xx, yy, original_coordinates(d, x[None])[0], s.epoch)
        _activations(model, s, x, index)
        return
    running = babysit.session_view(get_conn(), session_id)["status"] == "running"
    follow = st.toggle("Follow the head live while it trains", value=running,
                       key=f"teach_follow_{session_id}", disabled=not running)
    live_part("teaching.epochs", _session_epochs, session_id, model, x, index,
              follow and running, live=follow and running)
