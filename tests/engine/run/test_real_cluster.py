"""A real `dask scheduler` / `dask worker` pair, started from a temporary directory with the
venv's dask CLI and no PYTHONPATH, as Dask's documentation starts them: where the engine is not
installed, the study is refused before any trial with one message naming the fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.run.cluster import ClusterNotReady
from engine.run.execution import make_executor

pytest.importorskip("distributed")
DASK = Path(sys.executable).with_name("dask")


def _start(args, cwd, env):
    return subprocess.Popen([str(DASK), *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the worker's nanny and its spawned child
    except ProcessLookupError:
        return
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest.fixture
def bare_cluster(tmp_path):
    """Scheduler + one worker in ``tmp_path``, where ``import engine`` fails."""
    if not DASK.exists():
        pytest.skip(f"no dask CLI beside {sys.executable}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    file = tmp_path / "scheduler.json"
    scheduler = _start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(file)], tmp_path, env)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert file.exists(), "the scheduler did not start"
        time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        worker = _start(["worker", "--scheduler-file", str(file), "--nthreads", "1",
                         "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"],
                        tmp_path, env)
        yield address
    finally:
        if worker is not None:
            _stop(worker)
        _stop(scheduler)


@pytest.mark.slow
def test_a_cluster_without_the_engine_is_refused_with_the_fix(bare_cluster):
    with pytest.raises(ClusterNotReady) as err:
        make_executor("dask", address=bare_cluster, timeout=30)
    text = str(err.value)
    assert text.startswith(f"the Dask cluster at {bare_cluster} cannot run this engine")
    assert "cannot import the engine" in text and "pip install ." in text
    assert "\n" not in text


@pytest.mark.slow
def test_a_study_on_such_a_cluster_fails_no_trial_and_says_the_fix(bare_cluster, db_path):
    from engine.storage import studies as store
    from engine.storage.db import connect
    from engine.study.facade import new_study
    from engine.study.runner import run_study

    study_id = new_study(
        db_path, name="cluster", space={"params": {"learning_rate": {
            "type": "float", "low": 1e-3, "high": 1e-1, "scale": "log"}},
            "fixed": {"hidden_layers": 1, "hidden_units": 8}},
        sampler={"kind": "random"}, scheduler={"kind": "full_budget", "n_epochs": 2},
        dataset={"kind": "moons", "n_samples": 100}, n_trials=4, executor_address=bare_cluster,
    )
    assert run_study(db_path, study_id) == "failed"
    conn = connect(db_path)
    study = store.get_study(conn, study_id)
    assert study["message"].startswith(f"the Dask cluster at {bare_cluster} cannot run")
    assert "pip install ." in study["message"]
    assert store.list_trials(conn, study_id) == []  # refused before the first trial
