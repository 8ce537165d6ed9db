"""A detached runner training a stacked unit is killed with SIGKILL and resumed: every member
has every epoch once, and ends with the weights of an uninterrupted stacked run, bitwise."""

from __future__ import annotations

import os
import signal

import numpy as np

from engine.nn import state_from_bytes
from engine.storage import runners
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study.facade import new_study, resume_study, start_study
from engine.study.runner import run_study
from tests.engine.processes import descendants
from tests.engine.study.test_study_end_to_end import wait_for

N_TRIALS, N_EPOCHS = 4, 6


def _study(db_path) -> int:
    """Four trials of one shape (one stack on one worker), one epoch a segment, on a set big
    enough (4,000 rows) for a stacked epoch to be caught in flight."""
    data = {"kind": "synthetic", "n_samples": 4000, "n_features": 20, "n_classes": 3}
    lr = {"type": "float", "low": 1e-3, "high": 0.05, "scale": "log"}
    return new_study(db_path, name="stacked kill -9", space={"params": {"learning_rate": lr},
                     "fixed": {"hidden_layers": 1, "hidden_units": 64}},
                     sampler={"kind": "random"}, dataset=data, n_trials=N_TRIALS, workers=1,
                     seed=3, scheduler={"kind": "full_budget", "n_epochs": N_EPOCHS})


def _trials(conn, study_id) -> dict[int, tuple[list[int], dict]]:
    """number -> (the epochs of its stored metrics, its last checkpoint's parameters)."""
    out = {}
    for t in store.list_trials(conn, study_id):
        epochs = [m["epoch"] for m in store.trial_metrics(conn, t["id"])]
        out[t["number"]] = (epochs, state_from_bytes(store.trial_checkpoint(conn, t["id"])))
    return out


def test_kill_9_mid_stack_loses_and_repeats_no_epoch_and_ends_bitwise(tmp_path, monkeypatch):
    monkeypatch.setenv("PANDA_CAVIAR_STACK", "1")
    monkeypatch.setenv("PANDA_CAVIAR_MAX_SEGMENT_EPOCHS", "1")
    monkeypatch.setenv("PANDA_CAVIAR_HEALTH_EVERY", "0")
    reference_db, db = tmp_path / "reference.db", tmp_path / "killed.db"
    reference = _study(reference_db)
    assert run_study(reference_db, reference) == "complete"

    study_id = _study(db)
    conn = connect(db)
    pid = start_study(db, study_id)
    assert pid is not None
    # two stacked segments committed: the third is in flight (its members marked running)
    wait_for(lambda: store.get_study(conn, study_id)["epochs_done"] >= 2 * N_TRIALS,
             every=0.005)
    workers = descendants(pid)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not runners.pid_alive(pid), timeout=10)
    trials = store.list_trials(conn, study_id)
    assert sum(t["state"] == "running" for t in trials) >= 2  # killed with a stack in flight
    done = store.get_study(conn, study_id)["epochs_done"]
    assert 2 * N_TRIALS <= done < N_TRIALS * N_EPOCHS
    wait_for(lambda: not any(runners.pid_alive(w) for w in workers), timeout=10)

    assert resume_study(db, study_id) not in (None, pid)
    wait_for(lambda: store.get_study(conn, study_id)["status"] == "complete", timeout=120)
    got = _trials(conn, study_id)
    want = _trials(connect(reference_db), reference)
    assert got.keys() == want.keys() == set(range(N_TRIALS))
    for number, (epochs, state) in got.items():
        assert epochs == want[number][0] == list(range(1, N_EPOCHS + 1)), number
        ref = want[number][1]
        assert state.epoch == ref.epoch == N_EPOCHS
        for name in ref.params:  # stacked members compute alone: the same bits either way
            np.testing.assert_array_equal(state.params[name], ref.params[name], err_msg=name)
        for name in ref.buffers:
            np.testing.assert_array_equal(state.buffers[name], ref.buffers[name], err_msg=name)
        assert state.rng_state == ref.rng_state
