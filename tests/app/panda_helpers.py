"""Arrangements shared by the Panda page tests: sessions and a trained trial, made through the
engine (training in the test process is fine here: it is the arrangement, not the page)."""

from __future__ import annotations

import base64
import json
import sqlite3
import time

import numpy as np
from streamlit.testing.v1 import AppTest

from engine import babysit
from engine.data import DatasetSpec, build_dataset
from engine.nn import TrainConfig, new_state, state_to_bytes, train_segment
from engine.nn.model import ModelSpec
from engine.search import trial_config
from engine.storage import studies as store
from tests.app.fakes import DATASET, fake_study

MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}


def trained_session(conn: sqlite3.Connection, epochs: int = 3, *, batch_norm: bool = True,
                    dataset: dict = MOONS) -> int:
    """A session with ``epochs`` trained epochs (trained here, synchronously)."""
    session_id = babysit.new_session(
        conn, name="arranged", model={"hidden": [8, 8], "batch_norm": batch_norm},
        dataset=dataset, config={"learning_rate": 0.01, "batch_size": 32}, seed=0,
    )
    if epochs:
        babysit.execute(conn, session_id, "run", {"epochs": epochs})
    return session_id


def trained_trial(conn: sqlite3.Connection, epochs: int = 2) -> tuple[int, int]:
    """A fake study whose first trial really trained ``epochs`` epochs and kept its
    checkpoint; returns (trial id with a checkpoint, trial id without one)."""
    study_id = fake_study(conn, n_trials=2, n_epochs=epochs, finished=0, status="running")
    first, second = store.list_trials(conn, study_id)
    data = build_dataset(DatasetSpec.from_dict(DATASET))
    params = {**first["params"], "hidden_units": 8, "hidden_layers": 1}
    model_kwargs, config, _ = trial_config(params, data.n_features, data.n_classes)
    conn.execute("UPDATE trials SET params_json = ? WHERE id = ?",
                 (json.dumps(params), first["id"]))
    from engine.study.runner import trial_seed

    # the weights the study runner starts it from, so its epochs can be rebuilt by replay
    state = new_state(ModelSpec(**model_kwargs), trial_seed(0, first["number"]))
    result = train_segment(state, TrainConfig.from_dict(config), data, epochs)
    store.record_segment(conn, first["id"], result.metrics, state_to_bytes(result.state),
                         state="complete")
    return first["id"], second["id"]


def poll(at: AppTest, until, timeout: float = 30.0, pause: float = 0.25) -> AppTest:
    """Re-run the page until ``until(at)`` holds (AppTest has no timer for fragments)."""
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        if until(at):
            return at
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out; errors: {[e.value for e in at.error]}, "
                f"metrics: {[(m.label, m.value) for m in at.metric]}"
            )
        time.sleep(pause)


def values(v) -> np.ndarray:
    """A figure-JSON array: a plain list, or Plotly's typed array {"bdata", "dtype", "shape"}."""
    if isinstance(v, dict) and "bdata" in v:
        flat = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        shape = v.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(v)


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def trace_names(spec: dict) -> list[str]:
    return [t.get("name", "") for t in spec["data"]]


def curves_spec(at: AppTest) -> dict:
    return next(s for s in chart_specs(at) if any("branch 0" in n for n in trace_names(s)))


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def widget(at: AppTest, kind: str, label: str):
    return next(w for w in at.get(kind) if w.label == label)
