"""Studies that train for real (engine.run.work.run_segment on local worker processes), including a
detached runner started through engine.run.launch, killed with SIGKILL, and resumed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from engine.data import DatasetSpec, build_dataset
from engine.nn import new_state, state_from_bytes
from engine.nn.model import predict_proba
from engine.run.launch import log_dir_for
from engine.storage import runners
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study.facade import new_study, resume_study, start_study
from engine.study.runner import run_study, trial_seed
from tests.engine.processes import descendants

MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}
SMALL = {"hidden_layers": 1, "hidden_units": 8, "batch_size": 32}


def exact_curves(conn, study_id):
    for trial in store.list_trials(conn, study_id):
        epochs = [m["epoch"] for m in store.trial_metrics(conn, trial["id"])]
        assert epochs == list(range(1, trial["epochs_done"] + 1)), (trial["number"], epochs)
        assert trial["epochs_done"] == trial["target_epochs"]


def val_scores(state, data) -> tuple[float, float]:
    """Validation accuracy and mean cross-entropy of a model state, computed here."""
    proba = predict_proba(state.spec, state.params, state.buffers, data.X_val)
    picked = proba[np.arange(len(data.y_val)), data.y_val]
    return float((proba.argmax(axis=1) == data.y_val).mean()), float(-np.log(picked).mean())


def wait_for(predicate, timeout=90.0, every=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError("condition not met in time")


def test_real_study_trains_every_trial(db_path):
    space = {"params": {"learning_rate": {"type": "float", "low": 1e-3, "high": 0.1,
                                          "scale": "log"}}, "fixed": SMALL}
    study_id = new_study(db_path, name="real", space=space, sampler={"kind": "random"},
                         scheduler={"kind": "full_budget", "n_epochs": 3}, dataset=MOONS,
                         n_trials=3, seed=0, workers=2)
    assert run_study(db_path, study_id, max_segment_epochs=2) == "complete"
    conn = connect(db_path)
    exact_curves(conn, study_id)
    data = build_dataset(DatasetSpec.from_dict(MOONS))
    trials = store.list_trials(conn, study_id)
    for trial in trials:
        assert trial["state"] == "complete"
        state = state_from_bytes(store.trial_checkpoint(conn, trial["id"]))
        assert state.epoch == 3 and state.spec.hidden == (8,)
        # the stored curve describes the stored weights: their validation numbers, recomputed
        acc, loss = val_scores(state, data)
        assert acc == trial["last_val_acc"]
        assert loss == pytest.approx(trial["last_val_loss"], rel=1e-5)
    # It learned: moons has 2 balanced classes (chance 0.5); the best trial is well above it
    # and far below the loss of the same net untrained (from the seed the runner used).
    best = max(trials, key=lambda t: t["last_val_acc"])
    untrained = new_state(state_from_bytes(store.trial_checkpoint(conn, best["id"])).spec,
                          trial_seed(0, best["number"]))
    assert best["last_val_acc"] >= 0.75
    assert best["last_val_loss"] < 0.75 * val_scores(untrained, data)[1]


def test_huge_learning_rate_diverges_and_the_study_goes_on(db_path):
    space = {"params": {"learning_rate": {"type": "choice", "options": [1e6, 1e-2]}},
             "fixed": {**SMALL, "optimizer": "sgd", "batch_norm": False}}
    study_id = new_study(db_path, name="diverge", space=space, sampler={"kind": "grid"},
                         scheduler={"kind": "full_budget", "n_epochs": 4}, dataset=MOONS,
                         seed=0, workers=2)
    assert run_study(db_path, study_id) == "complete"
    conn = connect(db_path)
    by_lr = {t["params"]["learning_rate"]: t for t in store.list_trials(conn, study_id)}
    diverged = by_lr[1e6]
    assert diverged["state"] == "diverged" and "learning rate 1e+06" in diverged["error"]
    assert diverged["epochs_done"] < 4
    values = store.study_metrics(conn, study_id)
    assert all(v == v and abs(v) != float("inf") for v in values["train_loss"])
    assert by_lr[1e-2]["state"] == "complete" and by_lr[1e-2]["epochs_done"] == 4


def test_detached_runner_runs_the_study_to_the_end(db_path):
    study_id = new_study(db_path, name="detached", space={"params": {}, "fixed": SMALL},
                         sampler={"kind": "random"}, dataset=MOONS, n_trials=2, workers=2,
                         scheduler={"kind": "full_budget", "n_epochs": 3})
    pid = start_study(db_path, study_id)
    assert pid is not None
    conn = connect(db_path)
    assert store.get_study(conn, study_id)["status"] == "running"  # never "interrupted"
    assert start_study(db_path, study_id) is None  # one runner per study
    wait_for(lambda: store.get_study(conn, study_id)["status"] == "complete")
    wait_for(lambda: not runners.pid_alive(pid), timeout=20)
    exact_curves(conn, study_id)
    info = runners.runner_info(conn, "study", study_id)
    assert info["pid"] == pid and info["stopped_at"] is not None
    logs = list(log_dir_for(db_path).glob("run-study-*.log"))
    assert logs and f"study {study_id}: complete" in logs[0].read_text()


def _slow_study(db_path, monkeypatch, name: str, *, n_trials: int, n_epochs: int) -> int:
    """A study on one worker whose segments are one epoch of a 4,000-sample set: slow enough
    to be caught mid-run by a signal."""
    monkeypatch.setenv("PANDA_CAVIAR_MAX_SEGMENT_EPOCHS", "1")
    data = {"kind": "synthetic", "n_samples": 4000, "n_features": 20, "n_classes": 3}
    return new_study(db_path, name=name, space={"params": {}, "fixed": {
        "hidden_layers": 1, "hidden_units": 64}}, sampler={"kind": "random"}, dataset=data,
        n_trials=n_trials, workers=1, scheduler={"kind": "full_budget", "n_epochs": n_epochs})


def test_killed_runner_is_interrupted_and_resumes_from_checkpoints(db_path, monkeypatch):
    study_id = _slow_study(db_path, monkeypatch, "kill -9", n_trials=3, n_epochs=20)
    conn = connect(db_path)
    pid = start_study(db_path, study_id)
    wait_for(lambda: store.get_study(conn, study_id)["epochs_done"] >= 3)
    workers = descendants(pid)
    assert workers
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not runners.pid_alive(pid), timeout=10)
    study = store.get_study(conn, study_id)
    assert study["status"] == "interrupted" and study["stored_status"] == "running"
    assert 3 <= study["epochs_done"] < 60
    # The runner's worker processes notice and exit by themselves.
    wait_for(lambda: not any(runners.pid_alive(w) for w in workers), timeout=10)

    new_pid = resume_study(db_path, study_id)
    assert new_pid not in (None, pid)
    wait_for(lambda: store.get_study(conn, study_id)["status"] == "complete")
    exact_curves(conn, study_id)
    assert {t["state"] for t in store.list_trials(conn, study_id)} == {"complete"}


def test_sigterm_stops_a_detached_runner_gracefully(db_path, monkeypatch):
    study_id = _slow_study(db_path, monkeypatch, "sigterm", n_trials=2, n_epochs=30)
    conn = connect(db_path)
    pid = start_study(db_path, study_id)
    wait_for(lambda: store.get_study(conn, study_id)["epochs_done"] >= 2)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not runners.pid_alive(pid), timeout=30)
    study = store.get_study(conn, study_id)
    assert study["status"] == "stopped" and study["epochs_done"] < 60
    states = [t["state"] for t in store.list_trials(conn, study_id)]
    assert "running" not in states and "stopped" in states


@pytest.mark.parametrize("command", [["run", "--study"], ["resume"]])
def test_cli_runs_a_study_in_the_foreground(db_path, command):
    import subprocess
    import sys

    study_id = new_study(db_path, name="cli", space={"params": {}, "fixed": SMALL},
                         sampler={"kind": "random"}, dataset=MOONS, n_trials=1, workers=1,
                         scheduler={"kind": "full_budget", "n_epochs": 2})
    result = subprocess.run(
        [sys.executable, "-m", "engine", *command, str(study_id), "--db", str(db_path)],
        cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"study {study_id}: complete" in result.stdout
    assert "epoch 2/2 complete" in result.stdout


def test_cli_creates_and_runs_a_study(db_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "engine", "run", "--trials", "2", "--epochs", "2", "--dataset",
         "moons", "--samples", "200", "--workers", "2", "--name", "from the cli",
         "--db", str(db_path)],
        cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "created study 1" in result.stdout and "study 1: complete" in result.stdout
    study = store.get_study(connect(db_path), 1)
    assert study["name"] == "from the cli" and study["counts"]["complete"] == 2



def test_cli_says_why_a_study_failed_without_a_traceback(db_path):
    import subprocess
    import sys

    result = subprocess.run(  # port 9 (discard) refuses at once: no scheduler there
        [sys.executable, "-m", "engine", "run", "--trials", "1", "--epochs", "1", "--dataset",
         "moons", "--samples", "100", "--scheduler", "tcp://127.0.0.1:9", "--db", str(db_path)],
        cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("study 1: failed: cannot reach the Dask scheduler at"), last
    assert "Traceback" not in result.stdout + result.stderr


def test_cli_runs_population_based_training(db_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "engine", "run", "--pbt", "--interval", "1", "--rounds", "2",
         "--trials", "4", "--dataset", "moons", "--samples", "200", "--workers", "2",
         "--db", str(db_path)],
        cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    conn = connect(db_path)
    study = store.get_study(conn, 1)
    assert study["scheduler"]["kind"] == "pbt" and study["counts"]["complete"] == 4
    assert len(store.trial_lineage(conn, 1)) == 1  # the worst of 4 copied a better one once
    refused = subprocess.run(
        [sys.executable, "-m", "engine", "run", "--pbt", "--halving", "--db", str(db_path)],
        cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=120,
    )
    assert refused.returncode != 0
    assert "choose one of --halving, --hyperband and --pbt" in refused.stderr

def test_cli_detach_starts_a_background_runner(db_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "engine", "run", "--trials", "1", "--epochs", "2", "--samples",
         "200", "--workers", "1", "--detach", "--db", str(db_path)],
        cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "created study 1" in result.stdout and "runner pid" in result.stdout
    conn = connect(db_path)
    wait_for(lambda: store.get_study(conn, 1)["status"] == "complete")
