"""The study actions from the command line (``engine.cli.main`` in this process)."""

from __future__ import annotations

import pytest

from engine.cli import main
from engine.storage import studies as store
from engine.storage.db import connect
from tests.engine.study.helpers import run_fake
from tests.engine.study.test_actions import L2, LR, make_study


@pytest.fixture
def study(db_path):
    study_id = make_study(db_path, params={"learning_rate": LR, "l2": L2}, n_trials=3)
    assert run_fake(db_path, study_id) == "complete"
    return study_id


def run(db_path, *args) -> int:
    return main([*args[:1], *[str(a) for a in args[1:]], "--db", str(db_path)])


def test_trial_add_clone_stop_note_name(db_path, study, capsys):
    assert run(db_path, "trial", study, "add", "learning_rate=0.01", "l2=1e-5",
               "--name", "guess") == 0
    assert "trial 3 added by hand" in capsys.readouterr().out
    assert run(db_path, "trial", study, "clone", 3, "learning_rate=0.02") == 0
    conn = connect(db_path)
    trials = store.list_trials(conn, study)
    assert trials[3]["params"]["l2"] == 1e-5 and trials[3]["name"] == "guess"
    assert trials[4]["params"]["learning_rate"] == 0.02 and trials[4]["params"]["l2"] == 1e-5
    assert run(db_path, "trial", study, "stop", 4) == 0
    assert run(db_path, "trial", study, "note", 4, "not", "needed") == 0
    assert run(db_path, "trial", study, "name", 0, "first") == 0
    trials = store.list_trials(conn, study)
    assert trials[4]["state"] == "cancelled" and trials[4]["notes"] == "not needed"
    assert trials[0]["name"] == "first"


def test_bad_input_is_one_line_not_a_traceback(db_path, study, capsys):
    assert run(db_path, "trial", study, "add", "learning_rate=9", "l2=1e-5") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "learning_rate" in err and "Traceback" not in err
    assert run(db_path, "trial", study, "stop", "x") == 2
    assert "needs the trial's number" in capsys.readouterr().err
    assert run(db_path, "extend", study, "--top", 7, "--epochs", 9) == 2
    assert "k=7 is more than the 3 finished" in capsys.readouterr().err
    assert run(db_path, "delete", study) == 2
    assert "--yes" in capsys.readouterr().err


def test_extend_space_rank_note_rename_archive_delete(db_path, study):
    conn = connect(db_path)
    assert run(db_path, "extend", study, "--trials", 2) == 0
    assert store.get_study(conn, study)["n_trials"] == 5
    assert run(db_path, "extend", study, "--top", 1, "--epochs", 6) == 0
    assert run(db_path, "space", study, "--range", "learning_rate=0.001:0.1",
               "--fix", "l2=0.0001") == 0
    s = store.get_study(conn, study)
    assert s["space"]["params"]["learning_rate"]["low"] == 0.001
    assert s["space"]["params"]["learning_rate"]["scale"] == "log"  # kept
    assert s["space"]["fixed"]["l2"] == 0.0001
    assert run(db_path, "rank", study, "last") == 0
    assert run(db_path, "note", study, "try", "wider") == 0
    assert run(db_path, "rename", study, "moons") == 0
    assert run(db_path, "archive", study) == 0
    s = store.get_study(conn, study)
    assert (s["rank"], s["notes"], s["name"], s["archived"]) == (
        {"at": "last"}, "try wider", "moons", True)
    assert run_fake(db_path, study) == "complete"
    assert [t["epochs_done"] for t in store.list_trials(conn, study)].count(6) == 1
    assert run(db_path, "delete", study, "--yes") == 0
    assert store.list_studies(conn) == []


@pytest.mark.parametrize("command", ["trial", "extend", "space", "note", "rename", "archive",
                                     "rank", "delete"])
def test_every_action_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m engine {command}") and "--db" in out
