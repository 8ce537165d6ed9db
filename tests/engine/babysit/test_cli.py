"""``python -m engine babysit ...`` end to end, through subprocesses on a temporary database."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import babysit
from engine.babysit import cli as babysit_cli
from engine.cli import main as cli_main

REPO = Path(__file__).resolve().parents[3]


def run_cli(db_path, *args, ok=True):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "babysit", *map(str, args), "--db", str(db_path)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_every_subcommand_has_help():
    parser = argparse.ArgumentParser(prog="engine")
    babysit_cli.add_parser(parser.add_subparsers())
    names = ["new", "adopt", "step", "pause", "set", "rollback", "auto", "pace", "show", "list",
             "serve"]
    for name in names:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(["babysit", name, "--help"])
        assert exit_info.value.code == 0


def test_cli_session_from_new_to_show(db_path, conn, capsys):
    out = run_cli(db_path, "new", "--dataset", "moons", "--n-samples", 200, "--hidden", "16,16",
                  "--lr", 0.01, "--batch-size", 32, "--seed", 0).stdout
    assert "session 1 created" in out
    out = run_cli(db_path, "step", 1, "--epochs", 4).stdout
    epochs = [line.split()[1] for line in out.splitlines() if line.startswith("epoch")]
    assert epochs == ["1", "2", "3", "4"] and "status idle at epoch 4" in out

    # The quick commands in-process (same entry point, no interpreter start-up each).
    def main(*args):
        code = cli_main(["babysit", *map(str, args), "--db", str(db_path)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    assert main("set", 1, "--lr", 0.001)[:2] == (0, "set applied: {'learning_rate': 0.001}\n")
    code, _, err = main("set", 1, "--other", "hidden=[32]")
    assert code == 2 and "cannot change 'hidden'" in err and "is fixed" in err
    assert main("rollback", 1, "--epoch", 2)[0] == 0
    assert main("auto", 1, "--on", "--patience", 2)[0] == 0
    assert main("pause", 1)[0] == 0
    assert main("pace", 1, "--eps", 2)[0] == 0 and babysit.session_view(conn, 1)["pace"] == 2.0
    code, _, err = main("pace", 1, "--eps", 500)
    assert code == 2 and "pace: epochs_per_second must be a number in (0, 100]" in err
    assert main("pace", 1, "--off")[0] == 0 and babysit.session_view(conn, 1)["pace"] is None
    code, out, _ = main("list")
    assert code == 0 and out.splitlines()[1].split()[:4] == ["1", "idle", "2", "1"]
    code, _, err = main("rollback", 1, "--epoch", 9)
    assert code == 2 and "epoch=9 is not on the current branch" in err

    show = run_cli(db_path, "show", 1).stdout
    assert "branch 0 (abandoned)" in show and "branch 1 from branch 0 at epoch 2 (current)" in show
    assert "[user] rollback" in show and "[user] auto" in show and "[user] set" in show
    view = babysit.session_view(conn, 1)
    assert view["head_epoch"] == 2 and view["branch"] == 1
    assert view["config"]["learning_rate"] == 0.001 and view["auto"]["enabled"]
    assert not view["runner_alive"]  # the CLI released the slot


def test_cli_refuses_a_model_too_large_with_the_limit(db_path, capsys):
    code = cli_main(["babysit", "new", "--hidden", ",".join(["4096"] * 7), "--db", str(db_path)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "model too large" in err and "the limit is 5,000,000" in err


def test_cli_turns_acting_on_health_flags_on_and_off(db_path, conn, capsys):
    """--no-on-flags / --on-flags on `auto` and on `new --auto`; a step prints what the
    babysitter did about a flag (here: a flat loss at 1e-6, the rate raised)."""
    def main(*args):
        code = cli_main(["babysit", *map(str, args), "--db", str(db_path)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, _ = main("new", "--dataset", "blobs", "--n-samples", 240, "--n-classes", 3,
                        "--hidden", "16,16", "--no-batch-norm", "--optimizer", "sgd",
                        "--lr", 1e-6, "--batch-size", 16, "--seed", 0, "--auto",
                        "--no-on-flags", "--factor", 0.5)
    assert code == 0, out
    view = babysit.session_view(conn, 1)
    assert view["auto"]["enabled"] and view["auto"]["on_flags"] is False
    code, out, _ = main("step", 1, "--epochs", 6)
    assert code == 0 and "auto-babysitter" not in out  # flat, but told to leave flags alone
    assert main("auto", 1, "--on", "--on-flags")[0] == 0
    assert babysit.session_view(conn, 1)["auto"]["on_flags"] is True
    code, out, _ = main("step", 1, "--epochs", 1)
    assert code == 0
    assert "auto-babysitter: no learning: loss flat at 1.1" in out, out
    assert "for 5 epochs at learning rate 1e-6: raised the learning rate to 2e-06" in out, out
    assert main("auto", 1, "--on", "--no-on-flags")[0] == 0
    assert babysit.session_view(conn, 1)["auto"]["on_flags"] is False
    with pytest.raises(SystemExit) as exit_info:
        main("auto", 1, "--on", "--on-flags=yes")
    assert exit_info.value.code == 2 and "--on-flags" in capsys.readouterr().err
