"""The study runner with stand-in work units: outcomes, scheduling, worker deaths, stop/resume.

The work units (``tests.engine.fake_work``) answer in milliseconds, so these tests exercise the
runner's bookkeeping on real worker processes; ``test_study_end_to_end.py`` trains for real.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from engine.run.execution import make_executor
from engine.storage import runners
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study import runner as runner_module
from engine.study.facade import new_study, stop_study
from engine.study.runner import run_study
from tests.engine import fake_work

LR_LOG = {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"}
FIXED = {"hidden_layers": 1, "hidden_units": 8, "batch_size": 32}
MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}


def make_study(db_path, *, lr=LR_LOG, n_trials=4, epochs=4, scheduler=None, sampler=None,
               workers=2) -> int:
    return new_study(
        db_path, name="test", space={"params": {"learning_rate": lr}, "fixed": FIXED},
        sampler=sampler or {"kind": "random"},
        scheduler=scheduler or {"kind": "full_budget", "n_epochs": epochs},
        dataset=MOONS, n_trials=n_trials, seed=3, workers=workers,
    )


def assert_exact_epochs(conn, trial, n_epochs):
    epochs = [m["epoch"] for m in store.trial_metrics(conn, trial["id"])]
    assert epochs == list(range(1, n_epochs + 1)), (trial["number"], epochs)
    assert trial["epochs_done"] == n_epochs


def test_study_runs_every_trial_to_its_budget(db_path):
    study_id = make_study(db_path, n_trials=5, epochs=4)
    status = run_study(db_path, study_id, work_fn=fake_work.fake_segment, max_segment_epochs=1)
    assert status == "complete"
    conn = connect(db_path)
    study = store.get_study(conn, study_id)
    assert study["status"] == "complete" and study["finished_at"] is not None
    assert study["counts"]["complete"] == 5 and study["epochs_done"] == 20
    assert not study["runner_alive"] and study["runner"]["stopped_at"] is not None
    for trial in store.list_trials(conn, study_id):
        assert trial["state"] == "complete" and trial["error"] == ""
        assert_exact_epochs(conn, trial, 4)
        assert b'"epoch": 4' in store.trial_checkpoint(conn, trial["id"])
    # One checkpoint per trial is kept, older ones deleted as segments land.
    assert conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 5


def test_segments_grow_to_the_target_duration(db_path, monkeypatch):
    sizes = []
    real_submit = runner_module.StudyRunner._submit

    def spy(self, conn, run):
        sizes.append(self._segment_epochs(run))
        return real_submit(self, conn, run)

    monkeypatch.setattr(runner_module.StudyRunner, "_submit", spy)
    study_id = make_study(db_path, n_trials=1, epochs=30, workers=1)
    # 5 ms per fake epoch and 0.05 s segments: the first segment measures, then ~10 epochs each.
    assert run_study(db_path, study_id, work_fn=fake_work.fake_segment, segment_seconds=0.05)
    assert sizes[0] == 1 and sizes[1] == 10 and sum(sizes) == 30


def test_successive_halving_prunes_and_keeps_curves(db_path):
    scheduler = {"kind": "successive_halving", "min_epochs": 1, "max_epochs": 9, "eta": 3}
    study_id = make_study(db_path, n_trials=9, scheduler=scheduler, workers=2)
    assert run_study(db_path, study_id, work_fn=fake_work.fake_segment) == "complete"
    conn = connect(db_path)
    trials = store.list_trials(conn, study_id)
    states = [t["state"] for t in trials]
    assert states.count("pruned") >= 3 and states.count("complete") >= 1
    assert set(states) == {"pruned", "complete"}
    for trial in trials:
        n = trial["epochs_done"]
        assert n in (1, 3, 9) and trial["target_epochs"] == 9
        assert_exact_epochs(conn, trial, n)  # a pruned trial keeps its curve up to its rung
        assert (trial["state"] == "complete") == (n == 9)


def test_diverged_trial_keeps_its_message_and_the_study_goes_on(db_path):
    lr = {"type": "choice", "options": [100.0, 1e-2]}
    study_id = make_study(db_path, lr=lr, sampler={"kind": "grid"}, n_trials=2, epochs=4)
    assert run_study(db_path, study_id, work_fn=fake_work.fake_segment) == "complete"
    conn = connect(db_path)
    by_lr = {t["params"]["learning_rate"]: t for t in store.list_trials(conn, study_id)}
    diverged, fine = by_lr[100.0], by_lr[1e-2]
    assert diverged["state"] == "diverged" and "nan at epoch 2" in diverged["error"]
    assert_exact_epochs(conn, diverged, 1)  # the good epoch is kept, nothing non-finite
    assert fine["state"] == "complete"
    assert store.get_study(conn, study_id)["counts"]["diverged"] == 1


def test_failing_work_unit_stores_a_traceback(db_path):
    lr = {"type": "choice", "options": [1e-4, 1e-2]}
    study_id = make_study(db_path, lr=lr, sampler={"kind": "grid"}, n_trials=2)
    assert run_study(db_path, study_id, work_fn=fake_work.failing_segment) == "complete"
    conn = connect(db_path)
    by_lr = {t["params"]["learning_rate"]: t for t in store.list_trials(conn, study_id)}
    failed = by_lr[1e-4]
    assert failed["state"] == "failed"
    assert "Traceback" in failed["error"] and "boom: this trial's work unit" in failed["error"]
    assert "failing_segment" in failed["error"]  # the worker's frames are in it
    assert by_lr[1e-2]["state"] == "complete"


def test_dead_worker_costs_one_retry_from_the_checkpoint(db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_DIE_DIR", str(tmp_path))
    lr = {"type": "choice", "options": [1e-4, 1e-2]}
    study_id = make_study(db_path, lr=lr, sampler={"kind": "grid"}, n_trials=2, epochs=3)
    status = run_study(db_path, study_id, work_fn=fake_work.dying_segment, max_segment_epochs=1)
    assert status == "complete"
    conn = connect(db_path)
    by_lr = {t["params"]["learning_rate"]: t for t in store.list_trials(conn, study_id)}
    assert by_lr[1e-4]["attempts"] == 1 and by_lr[1e-4]["state"] == "complete"
    for trial in by_lr.values():
        assert_exact_epochs(conn, trial, 3)


def test_worker_that_keeps_dying_fails_the_trial_only(db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_DIE_DIR", str(tmp_path))
    monkeypatch.setenv("FAKE_DIE_ALWAYS", "1")
    lr = {"type": "choice", "options": [1e-4, 1e-2]}
    study_id = make_study(db_path, lr=lr, sampler={"kind": "grid"}, n_trials=2, epochs=3,
                          workers=1)
    status = run_study(db_path, study_id, work_fn=fake_work.dying_segment, max_segment_epochs=1)
    assert status == "complete"
    conn = connect(db_path)
    by_lr = {t["params"]["learning_rate"]: t for t in store.list_trials(conn, study_id)}
    dead = by_lr[1e-4]
    assert dead["state"] == "failed" and dead["attempts"] == runner_module.MAX_WORKER_DEATHS
    assert dead["error"].startswith("worker died") and "epoch 1" in dead["error"]
    assert_exact_epochs(conn, dead, 1)
    assert by_lr[1e-2]["state"] == "complete"


def test_a_dying_worker_is_charged_to_its_own_trial_not_to_the_one_beside_it(
        db_path, tmp_path, monkeypatch):
    # Two workers; the trial at 1e-4 kills its worker on every segment after the first, while
    # the one at 1e-2 trains on the other worker. The pool fails both units each time; only the
    # first may be charged.
    monkeypatch.setenv("FAKE_DIE_DIR", str(tmp_path))
    monkeypatch.setenv("FAKE_DIE_ALWAYS", "1")
    lr = {"type": "choice", "options": [1e-4, 1e-2]}
    study_id = make_study(db_path, lr=lr, sampler={"kind": "grid"}, n_trials=2, epochs=3)
    status = run_study(db_path, study_id, work_fn=fake_work.dying_beside_slow,
                       max_segment_epochs=1)
    assert status == "complete"
    conn = connect(db_path)
    by_lr = {t["params"]["learning_rate"]: t for t in store.list_trials(conn, study_id)}
    dead, healthy = by_lr[1e-4], by_lr[1e-2]
    assert dead["state"] == "failed" and dead["attempts"] == runner_module.MAX_WORKER_DEATHS
    assert healthy["state"] == "complete" and healthy["attempts"] == 0
    assert_exact_epochs(conn, healthy, 3)


def _run_in_thread(db_path, study_id, **options):
    result = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("status", run_study(db_path, study_id, **options))
    )
    thread.start()
    return thread, result


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_stop_then_resume_loses_and_repeats_no_epoch(db_path):
    study_id = make_study(db_path, n_trials=4, epochs=6, workers=2)
    conn = connect(db_path)
    options = {"work_fn": fake_work.slow_segment, "max_segment_epochs": 1}
    thread, result = _run_in_thread(db_path, study_id, **options)
    _wait_for(lambda: store.get_study(conn, study_id)["epochs_done"] >= 3)
    assert stop_study(conn, study_id) == "stopping"
    thread.join(timeout=30)
    assert result["status"] == "stopped"
    study = store.get_study(conn, study_id)
    assert study["status"] == "stopped" and 3 <= study["epochs_done"] < 24
    states = {t["state"] for t in store.list_trials(conn, study_id)}
    assert "running" not in states and "stopped" in states
    assert not runners.pending_intents(conn, "study", study_id)

    assert run_study(db_path, study_id, **options) == "complete"
    for trial in store.list_trials(conn, study_id):
        assert trial["state"] == "complete"
        assert_exact_epochs(conn, trial, 6)


def test_resume_intent_cancels_a_stop_in_progress(db_path):
    study_id = make_study(db_path, n_trials=2, epochs=4, workers=1)
    conn = connect(db_path)
    runners.post_intent(conn, "study", study_id, "stop")
    runners.post_intent(conn, "study", study_id, "resume")
    status = run_study(db_path, study_id, work_fn=fake_work.fake_segment)
    assert status == "complete"


def test_a_second_runner_leaves_the_study_alone(db_path):
    study_id = make_study(db_path, n_trials=1)
    conn = connect(db_path)
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert runners.register_runner(conn, "study", study_id, pid=holder.pid)
        status = run_study(db_path, study_id, work_fn=fake_work.fake_segment)
        assert status == "queued"
        assert store.get_study(conn, study_id)["epochs_done"] == 0
        assert runners.runner_info(conn, "study", study_id)["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_runner_crash_marks_the_study_failed(db_path, caplog):
    study_id = make_study(db_path, n_trials=1)

    def no_executor(study):
        raise ConnectionError("cannot reach the Dask scheduler at 'tcp://nowhere:1'")

    with caplog.at_level("INFO", logger="engine"):
        status = run_study(db_path, study_id, work_fn=fake_work.fake_segment,
                           executor_factory=no_executor)
    assert status == "failed"
    conn = connect(db_path)
    study = store.get_study(conn, study_id)
    assert study["status"] == "failed" and "cannot reach the Dask scheduler" in study["message"]
    assert not runners.runner_alive(conn, "study", study_id)
    # a cluster the user can fix is said in one line, not as a crash with a traceback
    said = [r for r in caplog.records if "tcp://nowhere:1" in r.getMessage()]
    assert said and all(r.exc_info is None for r in said)
    assert not any("crashed" in r.getMessage() for r in caplog.records)


def test_a_real_crash_is_logged_with_its_traceback(db_path, caplog):
    study_id = make_study(db_path, n_trials=1)

    def broken(study):
        raise KeyError("workers")

    with caplog.at_level("INFO", logger="engine"):
        assert run_study(db_path, study_id, work_fn=fake_work.fake_segment,
                         executor_factory=broken) == "failed"
    crashed = [r for r in caplog.records if "runner crashed" in r.getMessage()]
    assert crashed and crashed[0].exc_info is not None
    assert "runner crashed: KeyError" in store.get_study(connect(db_path), study_id)["message"]


@pytest.mark.parametrize("state", ["running", "stopping"])
def test_study_without_live_runner_reads_interrupted(db_path, state):
    study_id = make_study(db_path, n_trials=1)
    conn = connect(db_path)
    store.set_study_status(conn, study_id, state)
    assert store.get_study(conn, study_id)["status"] == "interrupted"
    assert store.list_studies(conn)[0]["status"] == "interrupted"
    assert runners.register_runner(conn, "study", study_id)
    assert store.get_study(conn, study_id)["status"] == state


def test_a_resume_posted_while_stopping_keeps_the_runner_going(db_path):
    study_id = make_study(db_path, n_trials=1)
    conn = connect(db_path)
    assert runners.register_runner(conn, "study", study_id)
    runner = runner_module.StudyRunner(db_path, study_id, work_fn=fake_work.fake_segment)
    runner.stopping = True
    runners.post_intent(conn, "study", study_id, "stop")
    runners.post_intent(conn, "study", study_id, "resume")
    assert runner._finish(conn) is None  # not finished: the loop takes the resume next
    assert runners.runner_alive(conn, "study", study_id)
    runners.post_intent(conn, "study", study_id, "stop")
    assert runner._finish(conn) == "stopped"  # the last word was stop
    assert not runners.runner_alive(conn, "study", study_id)


def test_submitting_to_a_pool_broken_in_the_meantime_renews_it(db_path):
    study_id = make_study(db_path, n_trials=1)
    conn = connect(db_path)
    runner = runner_module.StudyRunner(
        db_path, study_id, work_fn=fake_work.fake_segment,
        executor_factory=lambda study: make_executor("local", workers=1))
    runner._start(conn)  # the study's settings, its history and a pool
    runner.slots.close()
    broken = make_executor("local", workers=1)
    with pytest.raises(BrokenProcessPool):
        broken.submit(fake_work.exit_now).result(timeout=60)
    runner.slots.executor = broken
    try:
        runner._submit(conn, runner._ask(conn))
        (future, (run, generation)), = runner.slots.inflight.items()
        assert generation == 1 and runner.slots.executor is not broken
        assert future.result(timeout=60)["epoch"] == 1
    finally:
        runner.slots.close()
