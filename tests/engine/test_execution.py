"""Local executors: spawned workers with one BLAS thread; worker deaths are recognised."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import pytest

from engine.execution import (
    WorkerDiedError,
    blas_threads,
    close_executor,
    describe_worker_death,
    is_worker_death,
    make_executor,
)


def test_local_workers_run_with_one_blas_thread():
    executor = make_executor("local", workers=2)
    try:
        results = [f.result(timeout=60) for f in [executor.submit(blas_threads) for _ in range(4)]]
        env = executor.submit(os.getenv, "OPENBLAS_NUM_THREADS").result(timeout=60)
    finally:
        close_executor(executor)
    assert all(threads and set(threads) == {1} for threads in results)
    assert env == "1"


def test_a_killed_local_worker_is_a_worker_death():
    executor = make_executor("local", workers=1)
    try:
        future = executor.submit(os._exit, 3)
        with pytest.raises(BrokenProcessPool) as info:
            future.result(timeout=60)
    finally:
        close_executor(executor)
    assert is_worker_death(info.value)
    assert describe_worker_death(info.value).startswith("worker died")
    assert is_worker_death(WorkerDiedError("x")) and not is_worker_death(ValueError("x"))


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [("local", {"workers": 0}, "workers must be an integer >= 1, got workers=0"),
     ("dask", {}, "needs the scheduler address"),
     ("ray", {}, "executor kind must be one of")],
)
def test_bad_executor_settings(kind, options, message):
    with pytest.raises(ValueError, match=message):
        make_executor(kind, **options)
