"""Run a study's real runner in this process with stand-in work units on threads (fast)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from engine.storage.db import db_path_of
from engine.study.runner import run_study
from tests.engine import fake_work


def run_fake(db, study_id: int, work_fn=fake_work.fake_segment, **options) -> str:
    """``run_study`` with ``work_fn`` on a thread pool; ``db`` a path or a connection."""
    path = db if not hasattr(db, "execute") else db_path_of(db)
    options.setdefault("executor_factory", lambda study: ThreadPoolExecutor(study["workers"]))
    return run_study(path, study_id, work_fn=work_fn, **options)
