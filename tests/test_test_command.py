"""The test command (scripts/test.sh, which CI runs) fails when the browser tests cannot run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ONE_BROWSER_TEST = "tests/app/test_e2e_babysit.py::test_babysit_in_the_browser"


def _run(command: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PANDA_CAVIAR_CHROMIUM": "/nonexistent/chromium",
                               **env})


def test_the_test_command_fails_when_no_browser_can_run():
    env = {k: v for k, v in os.environ.items() if k != "PANDA_CAVIAR_REQUIRE_BROWSER"}
    result = subprocess.run(
        ["bash", "scripts/test.sh", "-q", "-p", "no:cacheprovider", ONE_BROWSER_TEST],
        cwd=REPO, capture_output=True, text=True, timeout=240,
        env={**env, "PANDA_CAVIAR_CHROMIUM": "/nonexistent/chromium"})
    assert result.returncode != 0, result.stdout[-2000:]
    assert "/nonexistent/chromium is absent" in result.stdout
    assert "1 error" in result.stdout or "1 failed" in result.stdout


def test_leaving_the_browser_tests_out_knowingly_is_a_skip():
    result = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   ONE_BROWSER_TEST], PANDA_CAVIAR_REQUIRE_BROWSER="0")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "1 skipped" in result.stdout


def test_ci_runs_the_test_command_and_a_lint_error_fails_it_before_any_test(tmp_path):
    """Issue 9: lint is enforced. ``.ci/run`` is the test command, and the test command runs
    ruff (as configured in pyproject.toml) first: a lint error fails it even when every test
    passes. Run on a copy holding a passing test and an unused import."""
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()
    for name in ("scripts", ".ci"):
        shutil.copytree(REPO / name, tmp_path / name)
    for path in [REPO / "pyproject.toml", *REPO.glob("requirements*.txt")]:
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / ".venv").symlink_to(REPO / ".venv")  # installed already: nothing to install
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    env = {k: v for k, v in os.environ.items() if k != "PANDA_CAVIAR_REQUIRE_BROWSER"}
    clean = subprocess.run(["bash", ".ci/run", "-q", "-p", "no:cacheprovider"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=240, env=env)
    assert clean.returncode == 0 and "1 passed" in clean.stdout, clean.stdout[-2000:]
    (tmp_path / "bad.py").write_text("import os\n")
    dirty = subprocess.run(["bash", ".ci/run", "-q", "-p", "no:cacheprovider"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=240, env=env)
    assert dirty.returncode != 0 and "F401" in dirty.stdout, dirty.stdout[-2000:]
    assert "passed" not in dirty.stdout  # ruff failed before pytest ran
