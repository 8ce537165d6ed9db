"""A real `dask scheduler` / `dask worker` pair, started from a temporary directory with the
venv's dask CLI, as Dask's documentation starts them: where the engine is not installed (no
PYTHONPATH), or is another version, the study is refused before any trial with one message
naming the fix; where it is importable (PYTHONPATH = this repository, as `pip install .` would
make it), a study completes, even with a worker killed mid-study."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy
import pytest

import engine
from engine.run.cluster import ClusterNotReady
from engine.run.execution import make_executor
from tests.engine import fake_work
from tests.engine.processes import kill_a_busy_dask_worker

pytest.importorskip("distributed")
DASK = Path(sys.executable).with_name("dask")
REPO = Path(__file__).resolve().parents[3]


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


@contextmanager
def real_cluster(tmp_path: Path, pythonpath: str | None, n_workers: int = 1) -> Iterator[str]:
    """``dask scheduler`` + ``dask worker --nworkers n`` started in ``tmp_path`` with this
    PYTHONPATH (None: none at all); yields the scheduler's address."""
    if not DASK.exists():
        pytest.skip(f"no dask CLI beside {sys.executable}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
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
                         "--nworkers", str(n_workers), "--no-dashboard", "--host", "127.0.0.1"],
                        tmp_path, env)
        yield address
    finally:
        if worker is not None:
            _stop(worker)
        _stop(scheduler)


@pytest.fixture
def bare_cluster(tmp_path):
    """Scheduler + one worker in ``tmp_path``, where ``import engine`` fails."""
    with real_cluster(tmp_path, None) as address:
        yield address


def moons_study(db_path, address: str, **options) -> int:
    from engine.study.facade import new_study

    return new_study(
        db_path, name="cluster", space={"params": {"learning_rate": {
            "type": "float", "low": 1e-3, "high": 1e-1, "scale": "log"}},
            "fixed": {"hidden_layers": 1, "hidden_units": 8}},
        sampler={"kind": "random"}, dataset={"kind": "moons", "n_samples": 100},
        executor_address=address, **options,
    )


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
    from engine.study.runner import run_study

    study_id = moons_study(db_path, bare_cluster, n_trials=4,
                           scheduler={"kind": "full_budget", "n_epochs": 2})
    assert run_study(db_path, study_id) == "failed"
    conn = connect(db_path)
    study = store.get_study(conn, study_id)
    assert study["message"].startswith(f"the Dask cluster at {bare_cluster} cannot run")
    assert "pip install ." in study["message"]
    assert store.list_trials(conn, study_id) == []  # refused before the first trial


@pytest.mark.slow
def test_a_worker_with_another_engine_version_is_refused_naming_both(tmp_path):
    """A machine that installed an older checkout: its engine says another version."""
    old = tmp_path / "old_checkout"
    shutil.copytree(REPO / "engine", old / "engine",
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = old / "engine" / "__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{engine.__version__}"',
                                             '__version__ = "0.0.1"', 1))
    with real_cluster(tmp_path, str(old)) as address:
        with pytest.raises(ClusterNotReady) as err:
            make_executor("dask", address=address, timeout=30)
    text = str(err.value)
    assert f"has engine 0.0.1 / numpy {numpy.__version__}" in text
    assert f"this runner engine {engine.__version__}" in text and "pip install ." in text


@pytest.mark.slow
def test_a_study_on_a_real_cluster_survives_a_worker_killed_mid_study(tmp_path, db_path):
    """Two workers under their nannies; one worker process is SIGKILLed while it trains a
    trial: the scheduler reruns the task on a live worker (the nanny restarts the dead one)
    and every trial completes with each epoch stored exactly once."""
    import distributed

    from engine.storage import studies as store
    from engine.storage.db import connect
    from engine.study.runner import run_study

    with real_cluster(tmp_path, str(REPO), n_workers=2) as address:
        study_id = moons_study(db_path, address, n_trials=4, workers=2, seed=0,
                               scheduler={"kind": "full_budget", "n_epochs": 8})
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("status", run_study(
            db_path, study_id, work_fn=fake_work.slow_segment, max_segment_epochs=4)))
        client = distributed.Client(address, set_as_default=False, timeout=30)
        try:
            client.wait_for_workers(2, timeout=60)
            thread.start()
            conn = connect(db_path)
            kill_a_busy_dask_worker(client, conn, study_id, timeout=60)
            thread.join(timeout=180)
        finally:
            client.close()
    assert result.get("status") == "complete"
    for trial in store.list_trials(conn, study_id):
        assert trial["state"] == "complete" and trial["error"] == "", trial
        epochs = [m["epoch"] for m in store.trial_metrics(conn, trial["id"])]
        assert epochs == list(range(1, 9))
