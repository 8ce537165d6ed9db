"""Start detached runner processes (``python -m engine ...``) that outlive whoever started them.

A runner started from a Streamlit page must survive a browser refresh and a server restart, so it
is a new session leader (``start_new_session=True``) with no stdin and its output in a log file
under ``<database dir>/logs/``. A small daemon thread waits on the child so that it never lingers
as a zombie in a long-lived parent (a zombie would look alive to ``os.kill(pid, 0)``).

``ensure_runner`` checks the slot, spawns and pre-claims the slot for the child's pid in one
``BEGIN IMMEDIATE`` transaction, so two clicks (or two tabs) never start two runners, and the
study never shows as "interrupted" while its runner is still importing NumPy.

A runner trains nothing itself (its workers do, one BLAS thread each), so it starts with one
BLAS thread too: set before NumPy loads, this spares the start-up of thread pools it would never
use (~0.06 s of wall time for each of NumPy's and SciPy's BLAS here).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from engine.run.execution import BLAS_VARIABLES
from engine.storage import runners

REPO_ROOT = Path(__file__).resolve().parents[2]


def log_dir_for(db_path: str | os.PathLike) -> Path:
    """Where runner logs go: ``<directory of the database>/logs``."""
    return Path(db_path).resolve().parent / "logs"


def runner_command(
    args: list[str], *, db_path: str | os.PathLike
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a runner: ``python -m engine *args --db db_path``
    with the repository root on PYTHONPATH, unbuffered output and one BLAS thread (run it with
    the repository root as working directory, as ``spawn_runner`` does)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(dict.fromkeys(BLAS_VARIABLES, "1"))
    argv = [sys.executable, "-m", "engine", *map(str, args), "--db", str(Path(db_path).resolve())]
    return argv, env


def spawn_runner(
    args: list[str], *, db_path: str | os.PathLike, log_dir: str | os.PathLike | None = None
) -> int:
    """Start ``python -m engine *args --db db_path`` detached; return its pid.

    The child runs in a new session, with stdin from /dev/null, stdout and stderr appended to
    ``<log_dir>/<args>-<time>.log`` (e.g. ``run-study-12-20260101-120000-123.log``), and the
    repository root as working directory and on PYTHONPATH (see ``runner_command``).
    """
    db_path = Path(db_path).resolve()
    logs = Path(log_dir) if log_dir is not None else log_dir_for(db_path)
    logs.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(str(a).lstrip("-") for a in args))
    stem = stem[:80] or "runner"  # e.g. run-study-12
    log_path = logs / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9}.log"
    argv, env = runner_command(args, db_path=db_path)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    return process.pid


def ensure_runner(
    conn: sqlite3.Connection,
    kind: str,
    owner_id: int,
    args: list[str],
    db_path: str | os.PathLike,
    log_dir: str | os.PathLike | None = None,
) -> int | None:
    """Spawn ``args`` as the runner of ``(kind, owner_id)`` unless a live runner holds the slot.

    Returns the new pid, or None when a live runner already holds the slot. The slot is claimed
    for the child's pid in the same transaction (``runners.claim_for_child``); the child's own
    ``register_runner`` then succeeds (same pid).
    """
    return runners.claim_for_child(
        conn, kind, owner_id, lambda: spawn_runner(args, db_path=db_path, log_dir=log_dir)
    )


def ensure_study_runner(
    conn: sqlite3.Connection, study_id: int, db_path: str | os.PathLike
) -> int | None:
    """Spawn ``python -m engine run --study <id>`` unless a live runner holds the study."""
    return ensure_runner(conn, "study", study_id, ["run", "--study", str(study_id)], db_path)
