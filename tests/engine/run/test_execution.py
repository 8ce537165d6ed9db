"""Local executors: workers forked from a preloaded server, one BLAS thread each, the maker's
environment, gone with their owner; worker deaths are recognised."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from engine.run.execution import (
    WorkerDiedError,
    blas_threads,
    close_executor,
    describe_worker_death,
    is_worker_death,
    make_executor,
)
from engine.storage.runners import pid_alive
from tests.engine import fake_work
from tests.engine.processes import descendants

REPO = Path(__file__).resolve().parents[3]


def test_local_workers_run_with_one_blas_thread():
    executor = make_executor("local", workers=2)
    try:
        results = [f.result(timeout=60) for f in [executor.submit(blas_threads) for _ in range(4)]]
        env = executor.submit(os.getenv, "OPENBLAS_NUM_THREADS").result(timeout=60)
    finally:
        close_executor(executor)
    assert all(threads and set(threads) == {1} for threads in results)
    assert env == "1"


def test_local_workers_start_preloaded_with_no_idle_blas_threads():
    executor = make_executor("local", workers=2)
    try:
        reports = [f.result(timeout=60) for f in
                   [executor.submit(fake_work.worker_report) for _ in range(4)]]
    finally:
        close_executor(executor)
    for report in reports:
        assert report["preloaded"] == {"engine.nn": True, "scipy.linalg.blas": True}
        if report["threads"] is not None:  # the main thread and the owner watchdog, no BLAS pool
            assert report["threads"] == 2, report


def test_local_workers_take_the_environment_of_the_process_that_made_the_executor(
    monkeypatch,
):
    close_executor(make_executor("local", workers=1))  # a fork server may now be running
    value = uuid.uuid4().hex
    monkeypatch.setenv("PANDA_CAVIAR_TEST_VALUE", value)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    executor = make_executor("local", workers=1)
    try:
        seen = executor.submit(os.getenv, "PANDA_CAVIAR_TEST_VALUE").result(timeout=60)
        blas = executor.submit(os.getenv, "OPENBLAS_NUM_THREADS").result(timeout=60)
    finally:
        close_executor(executor)
    assert seen == value and blas == "1"


OWNER = """
import sys, time
from engine.run.execution import make_executor
from tests.engine import fake_work
executor = make_executor("local", workers=2)
futures = [executor.submit(fake_work.pid_after, 0.5) for _ in range(2)]
print(*sorted({f.result() for f in futures}), flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_and_their_fork_server_exit_when_the_owner_is_killed():
    owner = subprocess.Popen([sys.executable, "-c", OWNER], cwd=REPO, stdout=subprocess.PIPE,
                             text=True)
    try:
        workers = {int(p) for p in owner.stdout.readline().split()}
        family = descendants(owner.pid)
        assert len(workers) == 2 and workers <= family
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(pid_alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in family if pid_alive(p)]
    finally:
        owner.kill()
        owner.stdout.close()


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
