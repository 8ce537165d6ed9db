"""engine.run.launch: the runner's command line and environment, and what a runner imports first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.run.execution import BLAS_VARIABLES
from engine.run.launch import REPO_ROOT, runner_command


def test_runner_command_runs_the_cli_with_one_blas_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "8")
    argv, env = runner_command(["run", "--study", 3], db_path=tmp_path / "x.db")
    assert argv == [sys.executable, "-m", "engine", "run", "--study", "3", "--db",
                    str((tmp_path / "x.db").resolve())]
    assert env["PYTHONPATH"].split(":") == [str(REPO_ROOT), "/elsewhere"]
    assert env["PYTHONUNBUFFERED"] == "1"
    assert all(env[name] == "1" for name in BLAS_VARIABLES)


def test_the_runner_and_the_work_unit_import_without_numpy():
    # A runner refers to engine.run.work.run_segment and must not load NumPy's and SciPy's BLAS
    # for it: its fork server starts importing those while the runner sets up.
    code = ("import sys, engine.study.runner, engine.run.work, engine.run.launch; "
            "print(sorted(m for m in ('numpy', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(REPO_ROOT), check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"
