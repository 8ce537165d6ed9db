"""The Dask path for real: a LocalCluster of two worker processes on 127.0.0.1.

One test kills a worker process in the middle of a study: with ``allowed-failures`` 0 the
scheduler reports ``KilledWorker`` at once, the runner retries the trial from its checkpoint on
the restarted worker, and the study completes with every curve exact.
"""

from __future__ import annotations

import threading

import pytest

from engine.run.execution import blas_threads, close_executor, make_executor
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study.facade import new_study
from engine.study.runner import run_study
from tests.engine import fake_work
from tests.engine.processes import kill_a_busy_dask_worker

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")


@pytest.fixture(scope="module")
def cluster():
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            host="127.0.0.1",
        )
    yield cluster
    cluster.close()


def test_dask_executor_runs_work_with_one_blas_thread(cluster):
    executor = make_executor("dask", address=cluster.scheduler_address)
    try:
        results = [f.result(timeout=60) for f in [executor.submit(blas_threads) for _ in range(4)]]
    finally:
        close_executor(executor)
    assert all(threads and set(threads) == {1} for threads in results)


def test_unreachable_scheduler_is_a_readable_error():
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler at"):
        make_executor("dask", address="tcp://127.0.0.1:9", timeout=1.0)


def test_killed_dask_worker_costs_one_retry_and_the_study_completes(cluster, db_path):
    space = {"params": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1.0,
                                          "scale": "log"}},
             "fixed": {"hidden_layers": 1, "hidden_units": 8}}
    study_id = new_study(
        db_path, name="dask", space=space, sampler={"kind": "random"},
        scheduler={"kind": "full_budget", "n_epochs": 8}, dataset={"kind": "moons",
        "n_samples": 200}, n_trials=4, seed=0, workers=2,
        executor_address=cluster.scheduler_address,
    )
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("status", run_study(
        db_path, study_id, work_fn=fake_work.slow_segment, max_segment_epochs=4)))
    thread.start()
    conn = connect(db_path)
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    try:
        kill_a_busy_dask_worker(client, conn, study_id, timeout=30)
        thread.join(timeout=90)
    finally:
        client.close()
    assert result.get("status") == "complete"
    trials = store.list_trials(conn, study_id)
    assert sum(t["attempts"] for t in trials) >= 1
    for trial in trials:
        assert trial["state"] == "complete" and trial["error"] == ""
        epochs = [m["epoch"] for m in store.trial_metrics(conn, trial["id"])]
        assert epochs == list(range(1, 9))


def test_real_training_runs_on_the_cluster(cluster, db_path):
    study_id = new_study(
        db_path, name="dask real", space={"params": {}, "fixed": {"hidden_units": 8}},
        sampler={"kind": "random"}, scheduler={"kind": "full_budget", "n_epochs": 3},
        dataset={"kind": "moons", "n_samples": 200}, n_trials=2, workers=2,
        executor_address=cluster.scheduler_address,
    )
    assert run_study(db_path, study_id, max_segment_epochs=2) == "complete"
    conn = connect(db_path)
    for trial in store.list_trials(conn, study_id):
        epochs = [m["epoch"] for m in store.trial_metrics(conn, trial["id"])]
        assert trial["state"] == "complete" and epochs == [1, 2, 3]
