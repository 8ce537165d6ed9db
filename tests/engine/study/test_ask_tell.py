"""Ask -> train -> tell: the runner asks its sampler for each trial as slots free, writes the
trial when it asks, stops at the budget, and a kill -9 loses or repeats nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.search import GridSampler, RandomSampler, Space
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study.facade import new_study
from tests.engine import fake_work
from tests.engine.learning_sampler import BestNeighbour, Recorder
from tests.engine.study.helpers import run_fake

REPO = Path(__file__).resolve().parents[3]
LR_LOG = {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"}
SPACE = {"params": {"learning_rate": LR_LOG}, "fixed": {"hidden_layers": 1, "hidden_units": 8,
                                                         "batch_size": 32}}
MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}


def make(db, **overrides) -> int:
    options = dict(name="ask", space=SPACE, sampler={"kind": "random"}, dataset=MOONS,
                   scheduler={"kind": "full_budget", "n_epochs": 3}, n_trials=6, seed=11,
                   workers=2)
    options.update(overrides)
    return new_study(db, **options)


def test_a_study_holds_only_the_trials_it_has_asked(db_path):
    study_id = make(db_path, n_trials=40, workers=2)
    conn = connect(db_path)
    seen = []
    runner = threading.Thread(target=run_fake, args=(db_path, study_id, fake_work.slow_segment),
                              kwargs={"max_segment_epochs": 1})
    runner.start()
    while runner.is_alive():
        trials = store.list_trials(conn, study_id)
        finished = sum(t["state"] in store.TERMINAL_STATES for t in trials)
        seen.append((len(trials), finished))
        time.sleep(0.05)
    runner.join()
    assert all(n <= finished + 2 for n, finished in seen)  # in flight: one per worker
    assert seen[0][0] <= 2 and max(n for n, _ in seen) == 40
    assert store.get_study(conn, study_id)["counts"]["complete"] == 40


def test_a_random_study_asks_what_a_batch_would_sample(db_path):
    study_id = make(db_path, n_trials=7)
    assert run_fake(db_path, study_id) == "complete"
    conn = connect(db_path)
    space = Space.from_dict(store.get_study(conn, study_id)["space"])
    units = [t["unit"] for t in store.list_trials(conn, study_id)]
    np.testing.assert_array_equal(units, RandomSampler().sample_unit(space, 7, seed=11))


def test_a_grid_study_ends_when_the_grid_does(db_path):
    space = {"params": {"learning_rate": {"type": "choice", "options": [0.1, 0.01, 0.001]}},
             "fixed": SPACE["fixed"]}
    study_id = make(db_path, space=space, sampler={"kind": "grid"}, n_trials=None)
    assert run_fake(db_path, study_id) == "complete"
    trials = store.list_trials(connect(db_path), study_id)
    assert sorted(t["params"]["learning_rate"] for t in trials) == [0.001, 0.01, 0.1]
    assert GridSampler().default_n(Space.from_dict(store.get_study(
        connect(db_path), study_id)["space"])) == 3


def test_an_epoch_budget_stops_the_asking(db_path):
    study_id = make(db_path, n_trials=None, epoch_budget=10, workers=1,
                    scheduler={"kind": "full_budget", "n_epochs": 3})
    assert run_fake(db_path, study_id) == "complete"
    trials = store.list_trials(connect(db_path), study_id)
    assert len(trials) == 4 and sum(t["epochs_done"] for t in trials) == 12  # 9 < 10, then one
    asha = {"kind": "successive_halving", "min_epochs": 1, "max_epochs": 9, "eta": 3}
    study_id = make(db_path, n_trials=None, epoch_budget=30, workers=1, scheduler=asha)
    assert run_fake(db_path, study_id) == "complete"
    trials = store.list_trials(connect(db_path), study_id)
    assert sum(t["state"] == "pruned" for t in trials) >= len(trials) // 2
    assert 30 <= sum(t["epochs_done"] for t in trials) <= 30 + 9


@pytest.mark.parametrize(("overrides", "message"), [
    ({"n_trials": None}, "needs a budget: give n_trials .* and/or epoch_budget"),
    ({"n_trials": None, "epoch_budget": 50, "sampler": {"kind": "quasi_random",
                                                        "method": "lhs"}},
     "draws the whole study at once: give n_trials"),
    ({"epoch_budget": 0}, "epoch_budget must be an integer in 1..\\d+, got epoch_budget=0"),
    ({"objective": {"metric": "accuracy"}}, "objective metric must be one of val_acc"),
])
def test_budgets_and_objectives_are_checked(db_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        make(db_path, **overrides)


def test_a_learning_sampler_hears_every_result(db_path):
    study_id = make(db_path, sampler=BestNeighbour().to_dict(), n_trials=8, workers=1)
    assert run_fake(db_path, study_id) == "complete"
    trials = store.list_trials(connect(db_path), study_id)
    for k in range(1, 8):  # each trial starts next to the best finished one before it
        best = max(trials[:k], key=lambda t: (t["last_val_acc"], -t["number"]))
        assert abs(trials[k]["unit"][0] - best["unit"][0]) < 0.3


def test_each_ask_sees_every_finished_and_every_pending_trial(db_path, monkeypatch):
    """Issue 9: the sampler is asked with the whole history, the finished trials with their
    scores and the pending ones (asked, not finished) that are training on the other worker."""
    monkeypatch.setattr(Recorder, "seen", [])
    study_id = make(db_path, sampler=Recorder().to_dict(), n_trials=6, workers=2)
    assert run_fake(db_path, study_id, fake_work.slow_segment, max_segment_epochs=1) == "complete"
    conn = connect(db_path)
    stored = {t["number"]: t for t in store.list_trials(conn, study_id)}
    assert [number for number, _ in Recorder.seen] == list(range(6))  # asked once each
    pending_seen = 0
    for number, trials in Recorder.seen:
        assert sorted(trials) == list(range(number))  # every trial asked before it
        for k, (state, scores) in trials.items():
            if state in store.TERMINAL_STATES:
                want = {m["epoch"]: m["val_acc"]
                        for m in store.trial_metrics(conn, stored[k]["id"])}
                assert scores == want  # a finished trial with its score at every epoch
            else:
                assert state in ("waiting", "running")
                pending_seen += 1
    assert pending_seen >= 1  # with 2 workers an ask came while the other trial trained


def test_a_lock_held_elsewhere_delays_the_runner_but_fails_nothing(db_path, monkeypatch):
    monkeypatch.setenv("PANDA_CAVIAR_BUSY_TIMEOUT_MS", "300")
    study_id = make(db_path, n_trials=4, workers=2)
    holder = sqlite3.connect(db_path, isolation_level=None)
    runner = threading.Thread(target=run_fake, args=(db_path, study_id, fake_work.slow_segment),
                              kwargs={"max_segment_epochs": 1})
    runner.start()
    conn = connect(db_path)
    while not store.list_trials(conn, study_id):
        time.sleep(0.01)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write: 10 busy timeouts
    time.sleep(3.0)
    holder.execute("COMMIT")
    runner.join(timeout=120)
    study = store.get_study(conn, study_id)
    assert study["status"] == "complete" and study["counts"]["complete"] == 4
    for t in store.list_trials(conn, study_id):
        assert [m["epoch"] for m in store.trial_metrics(conn, t["id"])] == [1, 2, 3]


def _runner(db_path, study_id) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "tests.engine.learning_sampler",
                             str(db_path), str(study_id)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _study(conn, study_id) -> list[tuple]:
    return [(t["number"], t["unit"], t["params"], t["state"],
             [(m["epoch"], m["val_acc"]) for m in store.trial_metrics(conn, t["id"])])
            for t in store.list_trials(conn, study_id)]


@pytest.mark.slow
def test_kill_9_with_a_learning_sampler_asks_nothing_twice_and_loses_nothing(tmp_path):
    options = dict(sampler=BestNeighbour().to_dict(), n_trials=8, workers=1)
    reference_db, db = tmp_path / "reference.db", tmp_path / "killed.db"
    reference = make(reference_db, **options)
    assert run_fake(reference_db, reference, fake_work.slow_segment,
                    max_segment_epochs=1) == "complete"
    study_id = make(db, **options)
    conn = connect(db)
    for kills in range(3):  # kill -9 at three moments: mid-trial, mid-study, ...
        runner = _runner(db, study_id)
        target = 2 + 2 * kills
        deadline = time.monotonic() + 60
        while store.get_study(conn, study_id)["epochs_done"] < target + kills:
            assert time.monotonic() < deadline and runner.poll() is None, runner.stdout.read()
            time.sleep(0.02)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        study = store.get_study(conn, study_id)
        assert study["status"] == "interrupted"
        numbers = [t["number"] for t in store.list_trials(conn, study_id)]
        assert numbers == list(range(len(numbers)))  # asked once each, in order
    runner = _runner(db, study_id)
    assert runner.wait(timeout=120) == 0 and "complete" in runner.stdout.read()
    assert _study(conn, study_id) == _study(connect(reference_db), reference)
