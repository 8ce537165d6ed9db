"""``python -m engine`` in a subprocess: help, list, show, export, sample, stop, errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import SUBCOMMAND_MODULES, build_parser, main
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study.facade import new_study
from engine.study.runner import run_study
from tests.engine import fake_work

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ("run", "resume", "stop", "list", "show", "export", "sample")


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def finished_study(db_path) -> int:
    space = {"params": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1.0,
                                          "scale": "log"}}, "fixed": {"hidden_units": 8}}
    study_id = new_study(
        db_path, name="=cli study", space=space, sampler={"kind": "random"},
        scheduler={"kind": "full_budget", "n_epochs": 3}, dataset={"kind": "moons",
        "n_samples": 200}, n_trials=3, workers=1,
    )
    assert run_study(db_path, study_id, work_fn=fake_work.fake_segment) == "complete"
    return study_id


def test_every_command_has_help():
    top = cli("--help").stdout
    for command in COMMANDS:
        assert command in top
        out = cli(command, "--help").stdout
        assert out.startswith(f"usage: python -m engine {command}") and "--db" in out


def test_list_and_show(db_path, finished_study):
    out = cli("list", "--db", str(db_path)).stdout
    assert "complete" in out and "=cli study" in out
    studies = json.loads(cli("--db", str(db_path), "list", "--json").stdout)
    assert studies[0]["id"] == finished_study and studies[0]["counts"]["complete"] == 3
    shown = cli("show", str(finished_study), "--db", str(db_path)).stdout
    assert "status complete" in shown and "learning_rate" in shown
    assert len([line for line in shown.splitlines() if " complete    3/3 " in line]) == 3
    data = json.loads(cli("show", str(finished_study), "--json", "--db", str(db_path)).stdout)
    assert len(data["trials"]) == 3 and data["study"]["scheduler"]["n_epochs"] == 3


def test_export_trials_and_metrics(db_path, finished_study, tmp_path):
    out = tmp_path / "metrics.csv"
    cli("export", str(finished_study), "--what", "metrics", "-o", str(out), "--db", str(db_path))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 9 and rows[0]["epoch"] == "1"
    text = cli("export", str(finished_study), "--db", str(db_path)).stdout
    trials = list(csv.DictReader(io.StringIO(text)))
    assert [t["state"] for t in trials] == ["complete"] * 3 and "learning_rate" in trials[0]


def test_run_offers_the_samplers_that_learn_and_hyperband():
    from engine.study.cli import _study_options

    parser = build_parser()
    options = _study_options(parser.parse_args(
        ["run", "--sampler", "gp", "--hyperband", "--epochs", "9", "--min-epochs", "1"]))
    assert options["sampler"] == {"kind": "gp"}
    assert options["scheduler"] == {"kind": "hyperband", "min_epochs": 1, "max_epochs": 9,
                                    "eta": 3}
    for kind in ("zoom", "tpe"):
        assert _study_options(parser.parse_args(["run", "--sampler", kind]))["sampler"] == {
            "kind": kind}
    with pytest.raises(ValueError, match="choose one of --halving, --hyperband and --pbt"):
        _study_options(parser.parse_args(["run", "--halving", "--hyperband"]))
    help_text = cli("run", "--help").stdout
    assert "gp" in help_text and "Gaussian process" in help_text and "--hyperband" in help_text


def test_sample_prints_json(tmp_path, capsys):
    samples = json.loads(cli("sample", "-n", "3", "--seed", "1").stdout)
    assert len(samples) == 3 and all("learning_rate" in s for s in samples)
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"params": {"dropout": {"type": "float", "low": 0.0,
                                                        "high": 0.5}}, "fixed": {}}))
    assert main(["sample", "--space", str(space), "-n", "5", "--sampler", "grid"]) == 0
    grid = json.loads(capsys.readouterr().out)
    assert sorted(s["dropout"] for s in grid) == pytest.approx([0.05, 0.15, 0.25, 0.35, 0.45])
    # a grid's points are at the centres of 5 equal cells, not on the ends of the range


def test_stop_without_runner_and_errors(db_path, finished_study):
    conn = connect(db_path)
    study_id = new_study(conn, name="idle", sampler={"kind": "random"},
                         scheduler={"kind": "full_budget", "n_epochs": 2},
                         dataset={"kind": "moons", "n_samples": 200}, n_trials=1, workers=1)
    assert cli("stop", str(study_id), "--db", str(db_path)).stdout.strip().endswith("stopped")
    assert store.get_study(conn, study_id)["status"] == "stopped"
    missing = cli("show", "999", "--db", str(db_path), check=False)
    assert missing.returncode == 2 and "no study with id=999" in missing.stderr
    bad = cli("run", "--sampler", "genetic", "--trials", "2", "--db", str(db_path), check=False)
    assert bad.returncode == 2 and "unknown sampler 'genetic'; valid: random" in bad.stderr


def test_plugin_modules_that_do_not_exist_yet_are_skipped(monkeypatch):
    monkeypatch.setattr("engine.cli.SUBCOMMAND_MODULES",
                        [*SUBCOMMAND_MODULES, "engine.not_written_yet.cli"])
    parser = build_parser()
    assert parser.parse_args(["list"]).command == "list"
    monkeypatch.setattr("engine.cli.SUBCOMMAND_MODULES", ["tests.engine.broken_plugin"])
    with pytest.raises(ModuleNotFoundError):  # a plugin whose own import fails is not hidden
        build_parser()


def _runner_rows(db_path) -> int:
    return connect(db_path).execute("SELECT COUNT(*) FROM runners").fetchone()[0]


@pytest.mark.parametrize("flag, value, low", [
    ("--epochs", "0", 1), ("--trials", "0", 1), ("--workers", "0", 1), ("--eta", "1", 2),
    ("--epoch-budget", "-5", 1), ("--trials", "many", 1),
])
def test_run_refuses_counts_out_of_range_naming_flag_value_and_range(flag, value, low, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run", flag, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: must be a whole number >= {low}, got {value!r}" in err


def test_run_epochs_given_is_the_budget_not_the_default():
    from engine.study.cli import _study_options

    args = build_parser().parse_args(["run", "--epochs", "1"])
    assert _study_options(args)["scheduler"] == {"kind": "full_budget", "n_epochs": 1}


@pytest.mark.parametrize("command", [["run", "--study", "99999"], ["run", "99999"],
                                     ["resume", "99999"], ["resume", "99999", "--detach"],
                                     ["run", "--study", "99999", "--detach"]])
def test_run_or_resume_of_a_missing_study_says_so_and_leaves_no_runner_row(
        command, db_path, capsys):
    connect(db_path).close()
    assert main([*command, "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert "no study with id 99999" in err and "Traceback" not in err
    assert _runner_rows(db_path) == 0


def test_run_study_of_a_missing_id_claims_no_runner_slot(db_path):
    from engine.storage.blobs import NotFoundError

    connect(db_path).close()
    with pytest.raises(NotFoundError, match="no study with id=4242"):
        run_study(db_path, 4242, work_fn=fake_work.fake_segment)
    assert _runner_rows(db_path) == 0


def test_sampler_json_missing_its_required_setting_names_it(capsys):
    assert main(["sample", "--sampler", '{"kind": "coarse_to_fine"}']) == 2
    err = capsys.readouterr().err
    assert "a coarse_to_fine sampler needs parent_trials" in err and "TypeError" not in err
    assert "--sampler zoom" in err and "optional keys: top_k, shrink, maximize" in err
    assert main(["sample", "--sampler", '{"kind": "coarse_to_fine", "parent_trials": 5}']) == 2
    assert "parent_trials must be a list of trials, got 5" in capsys.readouterr().err


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.csv", "--csv: no file"),
    (lambda d: d, "is a directory; give a CSV file"),
    (lambda d: (d / "latin.csv").write_bytes(b"a,b,label\n\xe9,1,x\n") and d / "latin.csv",
     "the file is not UTF-8 text: byte 0xe9 in row 2"),
])
def test_run_csv_that_cannot_be_read_gets_the_projects_message(make, message, tmp_path,
                                                                 db_path, capsys):
    path = make(tmp_path)
    assert main(["run", "--csv", str(path), "--trials", "1", "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and str(path) in err


@pytest.mark.parametrize("flag, env, stacks", [("--no-stack", "1", False), ("--stack", "0", True),
                                              (None, "0", False)])
def test_run_stack_flag_decides_whether_the_runner_stacks(flag, env, stacks, db_path,
                                                          monkeypatch):
    """--stack/--no-stack override $PANDA_CAVIAR_STACK for the runner `run` starts: with
    stacking on, every submission goes through stacking.submit (which stacks where it pays)."""
    from engine.study import stacking

    calls = []
    real = stacking.submit
    monkeypatch.setattr(stacking, "submit", lambda *a: (calls.append(1), real(*a)))
    monkeypatch.setenv("PANDA_CAVIAR_STACK", env)
    argv = ["run", "--dataset", "moons", "--samples", "120", "--trials", "2", "--epochs", "1",
            "--workers", "1", "--db", str(db_path)] + ([flag] if flag else [])
    assert main(argv) == 0
    with connect(db_path) as conn:
        (study,) = store.list_studies(conn)
    assert study["counts"]["complete"] == 2
    assert bool(calls) is stacks


@pytest.mark.parametrize("command", ["run", "resume"])
@pytest.mark.parametrize("flag, value", [("--no-stack", "0"), ("--stack", "1")])
def test_a_detached_runner_gets_the_stack_flag_in_its_environment(command, flag, value, db_path,
                                                                  finished_study, monkeypatch):
    import engine.study.facade as facade
    from engine.run.launch import runner_command

    # the opposite in this process's environment (the flag wins); restored after the test
    monkeypatch.setenv("PANDA_CAVIAR_STACK", "1" if value == "0" else "0")
    seen = []

    def spawn(db, study_id):  # db: a path (start_study) or a connection (resume_study)
        seen.append(runner_command(["run", "--study", str(study_id)], db_path=db_path)[1])
        return 4242

    monkeypatch.setattr(facade, "start_study", spawn)
    monkeypatch.setattr(facade, "resume_study", spawn)
    argv = ([command, "--study", str(finished_study)] if command == "run" else
            [command, str(finished_study)])
    assert main([*argv, "--detach", flag, "--db", str(db_path)]) == 0
    assert seen[0]["PANDA_CAVIAR_STACK"] == value
