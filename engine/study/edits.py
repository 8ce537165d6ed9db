"""What each action on a study does: check its payload, then write it (in the caller's
transaction).

Every kind is a pair ``check(conn, study, payload) -> normalised payload`` (no writes; a
``ValueError`` naming the field, the value and what is valid) and ``write(conn, study, payload)
-> result dict``. ``engine.study.actions`` queues them and applies them, checking again at apply
time (the study may have moved on since the action was asked for).

Trials made by hand (added, cloned, returned from a babysitting session) have ``origin`` ``"user"``
or ``"session"``, are on top of the study's trial budget (``n_trials`` grows by one), and the
sampler learns from them like any other. Work added to a ``complete`` study makes it ``stopped``:
resuming it trains the new work.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from engine.storage import actions as store_actions
from engine.storage import studies as store
from engine.study.ranking import check_rank, ranked

WORK_KINDS = ("add_trial", "clone_trial", "more_trials", "extend_top")
TEXT_LIMIT = 10_000


# -- helpers -------------------------------------------------------------------------------
def _space(study: dict):
    from engine.search import Space

    return Space.from_dict(study["space"])


def _int(value: Any, field: str, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (
            high is not None and value > high):
        valid = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{field} must be an integer {valid}, got {field}={value!r}")
    return value


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be text, got {field}={value!r}")
    if len(value) > TEXT_LIMIT:
        raise ValueError(f"{field} is {len(value)} characters long; at most {TEXT_LIMIT}")
    return value.strip()


def trial_by_number(conn: sqlite3.Connection, study: dict, number: Any) -> dict:
    number = _int(number, "trial", 0)
    trial_id = store_actions.trial_id_by_number(conn, study["id"], number)
    if trial_id is None:
        count = store_actions.trial_count(conn, study["id"])
        raise ValueError(f"study {study['id']} has no trial {number} (its trials are numbered "
                         f"0..{count - 1})" if count else f"study {study['id']} has no trial yet")
    return store.get_trial(conn, trial_id)


def _coerce(dim, value: Any) -> Any:
    kind = dim.to_dict().get("type")
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def trial_params(study: dict, values: dict, base: dict | None = None) -> tuple[dict, list]:
    """The params and unit point of a trial made by hand: ``values`` for searched parameters
    (over ``base``'s), checked against the study's space; fixed knobs take the study's values."""
    space = _space(study)
    if not isinstance(values, dict):
        raise ValueError(f"params must be a mapping of parameter to value, got {values!r}")
    for name, value in values.items():
        if name in space.fixed and value != space.fixed[name]:
            raise ValueError(f"{name} is fixed at {space.fixed[name]!r} in this study; searched "
                             f"parameters: {', '.join(space.params) or 'none'}")
        if name not in space.params and name not in space.fixed:
            raise ValueError(f"{name} is not a parameter of this study; searched parameters: "
                             f"{', '.join(space.params) or 'none'}")
    base = {k: v for k, v in (base or {}).items() if k in space.params}
    merged = {**base, **{k: v for k, v in values.items() if k in space.params}}
    missing = [n for n in space.params if n not in merged]
    if missing:
        raise ValueError(f"give a value for every searched parameter; missing: {missing}")
    merged = {n: _coerce(space.params[n], merged[n]) for n in space.params}
    unit = space.unit_from_params(merged)  # SpaceError (a ValueError) names the parameter
    return {**merged, **space.fixed}, [float(u) for u in unit]


def target_epochs(study: dict, params: dict) -> int:
    from engine.search import scheduler_from_dict, trial_config

    _, _, n_epochs = trial_config(params, 2, 2)
    return scheduler_from_dict(study["scheduler"]).target_epochs(n_epochs)


def _work_added(conn: sqlite3.Connection, study: dict) -> None:
    if study["stored_status"] == "complete":
        store_actions.update_study(conn, study["id"], status="stopped")


def add_hand_trial(conn: sqlite3.Connection, study: dict, row: dict) -> int:
    """Add one trial made by hand (``add_trials`` row) on top of the trial budget."""
    trial_id = store.add_trials(conn, study["id"], [row])[0]
    if study["n_trials"]:
        n_trials, _ = store_actions.study_budget(conn, study["id"])
        store_actions.update_study(conn, study["id"], n_trials=n_trials + 1)
    return trial_id


# -- kinds ---------------------------------------------------------------------------------
def check_add_trial(conn, study, payload):
    params, _ = trial_params(study, payload.get("params") or {})
    return {"params": params, "name": _text(payload.get("name"), "name"),
            "notes": _text(payload.get("notes"), "notes")}


def write_add_trial(conn, study, p, source=None):
    params, unit = trial_params(study, p["params"])
    trial_id = add_hand_trial(conn, study, {
        "params": params, "unit": unit, "target_epochs": target_epochs(study, params),
        "origin": "user", "name": p["name"], "notes": p["notes"], "source": source})
    _work_added(conn, study)
    return {"trial_id": trial_id, "number": store.get_trial(conn, trial_id)["number"]}


def check_clone_trial(conn, study, payload):
    source = trial_by_number(conn, study, payload.get("trial"))
    edits = payload.get("edits") or payload.get("params") or {}  # normalised: the params
    params, _ = trial_params(study, edits, base=source["params"])
    return {"trial": source["number"], "params": params,
            "name": _text(payload.get("name"), "name") or f"clone of trial {source['number']}",
            "notes": _text(payload.get("notes"), "notes")}


def write_clone_trial(conn, study, p):
    source = trial_by_number(conn, study, p["trial"])
    return write_add_trial(conn, study, p, source={"kind": "clone", "trial_id": source["id"],
                                                   "number": source["number"]})


def check_more_trials(conn, study, payload):
    trials, epochs = payload.get("trials"), payload.get("epochs")
    if (trials is None) == (epochs is None):
        raise ValueError("give trials=N (more trials) or epochs=N (a larger epoch budget)")
    if trials is not None:
        if not study["n_trials"]:
            raise ValueError("this study has no trial budget to extend (its budget is "
                             + (f"{study['epoch_budget']} epochs): give epochs=N"
                                if study["epoch_budget"] else "what its sampler proposes)"))
        return {"trials": _int(trials, "trials", 1, 100_000)}
    if not study["epoch_budget"]:
        raise ValueError("this study has no epoch budget to extend: give trials=N")
    return {"epochs": _int(epochs, "epochs", 1, 10_000_000)}


def write_more_trials(conn, study, p):
    n_trials, epoch_budget = store_actions.study_budget(conn, study["id"])
    if "trials" in p:
        n_trials += p["trials"]
        store_actions.update_study(conn, study["id"], n_trials=n_trials)
    else:
        epoch_budget += p["epochs"]
        store_actions.update_study(conn, study["id"], epoch_budget=epoch_budget)
    _work_added(conn, study)
    return {"n_trials": n_trials or None, "epoch_budget": epoch_budget}


EXTENDABLE = ("complete", "pruned", "cancelled")


def _top(conn, study, k: int, epochs: int) -> list[dict]:
    from engine.search import Objective

    trials, metrics = store.study_trials_and_metrics(conn, study["id"])
    done = [t for t in trials if t["state"] in EXTENDABLE and t["checkpoint_id"] is not None]
    top = ranked(Objective.from_dict(study["objective"]), done, metrics, study["rank"])
    if k > len(top):
        raise ValueError(f"k={k} is more than the {len(top)} finished trial(s) with a score and "
                         "a checkpoint")
    short = [t["number"] for t, _ in top[:k] if t["epochs_done"] >= epochs]
    if short:
        raise ValueError(f"epochs={epochs} is not more than trial(s) {short} already trained; "
                         "give a larger number of epochs")
    return [t for t, _ in top[:k]]


def check_extend_top(conn, study, payload):
    if study["scheduler"]["kind"] == "pbt":
        raise ValueError("a population-based study's rounds are its budget; extend a trial by "
                         "babysitting it instead")
    k = _int(payload.get("k"), "k", 1)
    epochs = _int(payload.get("epochs"), "epochs", 1, 100_000)
    _top(conn, study, k, epochs)
    return {"k": k, "epochs": epochs}


def write_extend_top(conn, study, p):
    trials = _top(conn, study, p["k"], p["epochs"])
    for t in trials:
        store_actions.update_trial(conn, t["id"], target_epochs=p["epochs"], state="waiting")
    _work_added(conn, study)
    return {"numbers": [t["number"] for t in trials], "epochs": p["epochs"]}


def check_set_space(conn, study, payload):
    from engine.search import Space

    if study["scheduler"]["kind"] == "pbt":
        raise ValueError("a population-based study's space cannot change: its trials carry "
                         "their params from round to round")
    old = payload.get("space") or study["space"]  # normalised: the whole new space
    params = {k: dict(v) for k, v in old.get("params", {}).items()}
    fixed = dict(old.get("fixed", {}))
    for name, dim in (payload.get("params") or {}).items():
        if name not in params and name not in fixed:
            raise ValueError(f"{name} is not a parameter of this study; its parameters: "
                             f"{', '.join([*params, *fixed])}")
        fixed.pop(name, None)
        params[name] = dim
    for name, value in (payload.get("fix") or {}).items():
        if name not in params:
            raise ValueError(f"{name} is not searched in this study; searched: "
                             f"{', '.join(params) or 'none'}")
        params.pop(name)
        fixed[name] = value
    space = Space.from_dict({"params": params, "fixed": fixed})  # SpaceError names the field
    from engine.search import trial_config

    trial_config(space.params_from_unit([0.5] * space.n_dims), 2, 2)  # every fixed value valid
    return {"space": space.to_dict()}


def write_set_space(conn, study, p):
    from engine.search import Space
    from engine.study.outside import unit_and_outside

    new = Space.from_dict(p["space"])
    units, outside = {}, []
    for t in store.list_trials(conn, study["id"]):
        unit, names = unit_and_outside(new, t["params"])
        units[t["id"]] = unit
        if names:
            outside.append(t["number"])
    store_actions.update_study(conn, study["id"], space_json=json.dumps(new.to_dict()))
    store_actions.set_units(conn, units)
    return {"outside": outside}


def check_stop_trial(conn, study, payload):
    trial = trial_by_number(conn, study, payload.get("trial"))
    if trial["state"] not in store.PENDING_STATES:
        raise ValueError(f"trial {trial['number']} is already {trial['state']}; only a waiting, "
                         "running, paused or stopped trial can be stopped")
    return {"trial": trial["number"]}


def write_stop_trial(conn, study, p):
    trial = trial_by_number(conn, study, p["trial"])
    store_actions.update_trial(conn, trial["id"], state="cancelled")
    return {"trial_id": trial["id"], "number": trial["number"], "was": trial["state"]}


def _maybe_trial(conn, study, payload) -> dict | None:
    return None if payload.get("trial") is None else trial_by_number(conn, study,
                                                                     payload["trial"])


def check_note(conn, study, payload):
    trial = _maybe_trial(conn, study, payload)
    return {"trial": None if trial is None else trial["number"],
            "text": _text(payload.get("text"), "text")}


def write_note(conn, study, p):
    trial = _maybe_trial(conn, study, p)
    if trial is None:
        store_actions.update_study(conn, study["id"], notes=p["text"])
    else:
        store_actions.update_trial(conn, trial["id"], notes=p["text"])
    return {}


def check_rename(conn, study, payload):
    trial = _maybe_trial(conn, study, payload)
    name = _text(payload.get("name"), "name")
    if trial is None and not name:
        raise ValueError("a study's name cannot be empty")
    return {"trial": None if trial is None else trial["number"], "name": name}


def write_rename(conn, study, p):
    trial = _maybe_trial(conn, study, p)
    if trial is None:
        store_actions.update_study(conn, study["id"], name=p["name"])
    else:
        store_actions.update_trial(conn, trial["id"], name=p["name"])
    return {}


def check_archive(conn, study, payload):
    archived = payload.get("archived", True)
    if not isinstance(archived, bool):
        raise ValueError(f"archived must be true or false, got archived={archived!r}")
    return {"archived": archived}


def write_archive(conn, study, p):
    store_actions.update_study(conn, study["id"], archived=int(p["archived"]))
    return {}


def check_rank_by(conn, study, payload):
    return check_rank(payload)


def write_rank_by(conn, study, p):
    store_actions.update_study(conn, study["id"], rank_json=json.dumps(check_rank(p)))
    return {}


KINDS = {
    name: (globals()[f"check_{name}"], globals()[f"write_{name}"])
    for name in ("add_trial", "clone_trial", "more_trials", "extend_top", "set_space",
                 "stop_trial", "note", "rename", "archive", "rank_by")
}
