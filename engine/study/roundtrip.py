"""The round trip between Panda and Caviar: babysit a study's trial from here, then return the
babysat model to its study as a new trial, with the lineage kept both ways.

``fork_trial`` adopts a trial into a babysitting session (``engine.babysit.adopt_trial``) at
its latest epoch (the one checkpoint a study keeps per trial), or at an earlier one by replaying
it: the session starts from the trial's initial weights and its runner retrains those epochs.
``return_session`` is a study action (``engine.study.actions.act(db, study_id,
"return_session", {"session_id": ...})``): the session's model becomes a ``complete`` trial of
the study it came from, origin ``"session"``. Its params are the knobs the session ended with
(those outside the study's space stay, marked), its curve is the whole path (the trial's epochs,
then the session's current branch: ``engine.storage.sessions.lineage`` of the head node), its
checkpoint is the head's, and its ``source`` is ``{"kind": "session", "session_id", "trial_id",
"number", "epoch", "head_node_id", "head_epoch"}`` (trial 12 at epoch 20 -> session 3 -> trial 49).
The session's timeline gets a ``returned`` event; ``returned_trials(conn, session_id)`` is the
other way round. The sampler learns from the returned trial like any other.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from engine.storage import sessions as session_store
from engine.storage import studies as store
from engine.storage.actions import trials_from_session
from engine.storage.runners import runner_alive
from engine.storage.trials import METRIC_FIELDS
from engine.study.edits import _int, add_hand_trial

MODEL_KNOBS = ("activation", "batch_norm", "init")


def fork_trial(conn: sqlite3.Connection, trial_id: int, *, epoch: int | None = None,
               name: str | None = None, start: bool = True) -> int:
    """A babysitting session continuing ``trial_id`` from ``epoch`` (default: its latest); its
    id. The latest epoch is forked from its checkpoint (the only one a study keeps). An earlier
    epoch is replayed: the session starts from the trial's initial weights (its seed) with its
    knobs and data, and a ``run`` of ``epoch`` epochs is queued for the session's runner
    (started unless ``start`` is False), which retrains the same epochs bitwise (a trial that
    trained stacked is refused: see ``replay_refusal``). ValueError naming the trial, the epoch
    and the valid ones otherwise."""
    from engine import babysit

    trial = store.get_trial(conn, trial_id)
    if trial["checkpoint_id"] is None:
        raise ValueError(f"trial {trial['number']} has no checkpoint yet (no epoch trained)")
    epoch = trial["epochs_done"] if epoch is None else _int(epoch, "epoch", 1)
    if epoch == trial["epochs_done"]:
        return babysit.adopt_trial(conn, trial_id, name=name)
    why = replay_refusal(conn, trial, probe=True)  # trains its epoch 1 once
    valid = forkable_epochs(conn, trial, refusal=why)
    if epoch not in valid:
        raise ValueError(f"trial {trial['number']} cannot be forked at epoch {epoch}"
                         + (f" ({why})" if why else "") + "; valid: "
                         + (f"epoch=1..{trial['epochs_done']}" if len(valid) > 1 else
                            f"epoch={trial['epochs_done']}"))
    session_id = babysit.adopt_trial(
        conn, trial_id, from_scratch=True,
        name=name or f"trial {trial['number']} replayed to epoch {epoch}")
    if start:
        babysit.send(conn, session_id, "run", epochs=int(epoch))
    return session_id


def replay_refusal(conn: sqlite3.Connection, trial: dict, *, probe: bool = False) -> str:
    """Why the trial's earlier epochs cannot be replayed from its start ("" if they can).
    ``probe`` also trains its epoch 1 from its seed (``babysit.trial_replays``): a trial that
    trained stacked with others is retraced only up to rounding, which grows (the demo's
    trial 37 replayed alone was 2.4x off in loss by epoch 30)."""
    from engine import babysit

    if trial.get("origin") == "session":
        return "its curve came from a babysitting session, which a replay cannot retrace"
    if any(r["trial_id"] == trial["id"] for r in store.trial_lineage(conn, trial["study_id"])):
        return "it took over another trial's weights (population-based training)"
    if probe and trial.get("epochs_done") and not babysit.trial_replays(conn, trial["id"]):
        return "it trained stacked with other trials, which a replay alone does not retrace"
    return ""


def forkable_epochs(conn: sqlite3.Connection, trial: dict, *, probe: bool = False,
                    refusal: str | None = None) -> list[int]:
    """The epochs "babysit from here" can fork ``trial`` (a ``get_trial`` dict) at: its latest
    (its kept checkpoint) and, unless ``replay_refusal`` (with ``probe``; or ``refusal``, its
    answer already at hand), every earlier one from 1 (replayed); ``[]`` before a checkpoint
    exists."""
    if trial.get("checkpoint_id") is None:
        return []
    if refusal is None:
        refusal = replay_refusal(conn, trial, probe=probe)
    if refusal:
        return [trial["epochs_done"]]
    return list(range(1, trial["epochs_done"] + 1))


def session_params(session: dict, names: list[str], epochs: int) -> dict[str, Any]:
    """The study knobs ``names`` as the session ended with them."""
    model, config = session["model"], session["config"]
    hidden = list(model.get("hidden") or [])
    out: dict[str, Any] = {}
    for name in names:
        if name in config:
            out[name] = config[name]
        elif name == "hidden_layers":
            out[name] = len(hidden)
        elif name == "hidden_units":
            out[name] = hidden[0] if hidden else 0
        elif name in MODEL_KNOBS and name in model:
            out[name] = model[name]
        elif name == "n_epochs":
            out[name] = epochs
    return out


def _path_metrics(conn: sqlite3.Connection, head_node_id: int) -> list[dict]:
    path = [n for n in session_store.lineage(conn, head_node_id) if n["epoch"] >= 1]
    metrics = []
    for node in path:
        if any(node.get(f) is None for f in METRIC_FIELDS):
            raise ValueError(f"the session's epoch {node['epoch']} has no metrics to record")
        m = {"epoch": node["epoch"], **{f: node[f] for f in METRIC_FIELDS}}
        if node.get("health"):
            m["health"] = node["health"]
        metrics.append(m)
    epochs = [m["epoch"] for m in metrics]
    if epochs != list(range(1, len(epochs) + 1)):
        raise ValueError(f"the session's path has epochs {epochs[:3]}...; a trial needs every "
                         "epoch from 1")
    return metrics


def _origin(conn: sqlite3.Connection, study: dict, session: dict) -> dict:
    source_id = session.get("source_trial_id")
    source = None
    if source_id is not None:
        try:
            source = store.get_trial(conn, source_id)
        except LookupError:
            source = None
    if source is None or source["study_id"] != study["id"]:
        raise ValueError(f"session {session['id']} was not adopted from a trial of study "
                         f"{study['id']}; only a session forked from this study returns to it")
    return source


def check_return_session(conn, study, payload):
    session_id = _int(payload.get("session_id"), "session_id", 1)
    session = session_store.get_session(conn, session_id)  # SessionNotFound: a LookupError
    source = _origin(conn, study, session)
    if session["status"] == "running" and runner_alive(conn, "session", session_id):
        raise ValueError(f"session {session_id} is training; pause it before returning it")
    head = session_store.get_node(conn, session["head_node_id"])
    if head["checkpoint_id"] is None or head["epoch"] < 1:
        raise ValueError(f"session {session_id} has no trained epoch with a checkpoint to return")
    for t in trials_from_session(conn, session_id):
        trial = store.get_trial(conn, t["trial_id"])
        if (trial["source"] or {}).get("head_node_id") == head["id"]:
            raise ValueError(f"session {session_id} at epoch {head['epoch']} was already "
                             f"returned as trial {trial['number']}; train it on first")
    return {"session_id": session_id, "trial": source["number"]}


def write_return_session(conn, study, p):
    from engine.search import Space
    from engine.study.outside import unit_and_outside

    session = session_store.get_session(conn, p["session_id"])
    source = _origin(conn, study, session)
    head = session_store.get_node(conn, session["head_node_id"])
    space = Space.from_dict(study["space"])
    params = session_params(session, [*space.params, *space.fixed], head["epoch"])
    unit, outside = unit_and_outside(space, params)
    adopted = next((e["payload"] for e in session_store.session_events(conn, session["id"])
                    if e["kind"] == "adopted"), {})
    origin = {"kind": "session", "session_id": session["id"], "trial_id": source["id"],
              "number": source["number"], "epoch": adopted.get("epoch"),
              "head_node_id": head["id"], "head_epoch": head["epoch"]}
    trial_id = add_hand_trial(conn, study, {
        "params": params, "unit": unit, "target_epochs": head["epoch"], "origin": "session",
        "name": f"returned from session {session['id']}", "source": origin})
    blob = session_store.read_checkpoint(conn, head["checkpoint_id"])
    store.record_segment(conn, trial_id, _path_metrics(conn, head["id"]), blob,
                         state="complete")
    number = store.get_trial(conn, trial_id)["number"]
    session_store.add_event(conn, session["id"], kind="returned", actor="user",
                            branch=session["branch"], epoch=head["epoch"],
                            payload={"study_id": study["id"], "trial_id": trial_id,
                                     "number": number})
    return {"trial_id": trial_id, "number": number, "outside": outside}


def returned_trials(conn: sqlite3.Connection, session_id: int) -> list[dict]:
    """The trials a session was returned as, oldest first: ``{trial_id, study_id, number,
    created_at}``."""
    return trials_from_session(conn, session_id)


def study_lineage(trials: list[dict]) -> list[dict]:
    """The hand-made trials of a study with where they came from, for the views:
    ``{"number", "kind", "from_trial", "epoch", "session_id", "head_epoch"}``."""
    out = []
    for t in trials:
        src = t.get("source")
        if not src:
            continue
        out.append({"number": t["number"], "kind": src.get("kind"),
                    "from_trial": src.get("number"), "epoch": src.get("epoch"),
                    "session_id": src.get("session_id"), "head_epoch": src.get("head_epoch")})
    return out
