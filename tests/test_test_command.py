"""The test command (scripts/test.sh, which CI runs) fails when the browser tests cannot run."""

from __future__ import annotations

import os
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
