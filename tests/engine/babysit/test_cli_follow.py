"""``babysit step`` on a live runner prints every epoch the runner trained, including the last
one written just before the session went idle (the follower used to read the epochs, then the
state, and lose an epoch that landed in between)."""

from __future__ import annotations

from engine.babysit import cli_commands
from engine.storage.sessions import METRIC_FIELDS


def test_the_epoch_written_just_before_idle_is_printed(monkeypatch, capsys):
    nodes: list[dict] = []

    def runner_trains_one_epoch(conn, session_id):  # each look at the state: one more epoch
        epoch = len(nodes) + 1
        if epoch <= 3:
            nodes.append({"id": epoch, "epoch": epoch, "branch": 0,
                          **{f: 0.5 for f in METRIC_FIELDS}})
        return {"status": "running" if len(nodes) < 3 else "idle", "runner_alive": True,
                "head_epoch": len(nodes), "branch": 0}

    monkeypatch.setattr(cli_commands, "session_view", runner_trains_one_epoch)
    monkeypatch.setattr(cli_commands, "session_events", lambda conn, sid, since_id=0: [])
    monkeypatch.setattr(cli_commands.store, "session_nodes", lambda conn, sid: list(nodes))
    monkeypatch.setattr(cli_commands.runners, "pending_intents", lambda conn, kind, sid: [])
    monkeypatch.setattr(cli_commands.time, "sleep", lambda s: None)

    assert cli_commands._follow(None, 1, intent_id=7) == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("epoch")] == \
        ["1", "2", "3"]
    assert "status idle at epoch 3" in out
