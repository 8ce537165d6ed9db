"""``python -m engine trial | extend | space | note | rename | archive | delete | rank``: hands on
a study from a terminal, through the same actions as the dashboard (``engine.study.actions``).

With a live runner an action is queued for it (and waited for); with none it is applied at once.
``--start`` also starts the runner (in the background) to train work added to a study.
"""

from __future__ import annotations

import argparse
import json


def _db(args: argparse.Namespace):
    from engine.storage.db import connect, default_path

    return connect(args.db or default_path())


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pairs(items: list[str], what: str) -> dict:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{what} must look like name=value, got {item!r}")
        out[name.strip()] = _value(value.strip())
    return out


def _act(args: argparse.Namespace, kind: str, payload: dict) -> dict:
    from engine.study.actions import act, wait_applied

    conn = _db(args)
    action = act(conn, args.study_id, kind, payload, start=getattr(args, "start", False))
    if action["queued"]:
        action = wait_applied(conn, action["id"], timeout=30.0)
        if action["applied_at"] is None:
            print(f"study {args.study_id}: {kind} queued for its runner (action {action['id']})")
            return action
        if action["error"]:
            raise ValueError(action["error"])
    return action


def _said(args: argparse.Namespace, text: str) -> int:
    print(f"study {args.study_id}: {text}")
    return 0


def cmd_trial(args: argparse.Namespace) -> int:
    meta = {"name": args.name or "", "notes": args.note or ""}
    if args.what == "add":
        args.values = [args.number, *args.values] if args.number else args.values
    elif args.number is None or not args.number.isdigit():
        raise ValueError(f"trial {args.what} needs the trial's number, got {args.number!r}")
    else:
        args.number = int(args.number)
    if args.what == "add":
        result = _act(args, "add_trial", {"params": _pairs(args.values, "a value"), **meta})
    elif args.what == "clone":
        result = _act(args, "clone_trial", {"trial": args.number,
                                            "edits": _pairs(args.values, "an edit"), **meta})
    elif args.what == "stop":
        _act(args, "stop_trial", {"trial": args.number})
        return _said(args, f"trial {args.number} stopped")
    elif args.what == "note":
        _act(args, "note", {"trial": args.number, "text": " ".join(args.values)})
        return _said(args, f"note on trial {args.number} saved")
    else:
        _act(args, "rename", {"trial": args.number, "name": " ".join(args.values)})
        return _said(args, f"trial {args.number} renamed")
    number = (result.get("result") or {}).get("number")
    hint = "" if args.start else "; `python -m engine resume ID` trains it"
    return _said(args, f"trial {number} added by hand{hint}")


def cmd_extend(args: argparse.Namespace) -> int:
    if args.top is not None:
        if args.epochs is None:
            raise ValueError("--top K needs --epochs E (train the best K trials to E epochs)")
        result = _act(args, "extend_top", {"k": args.top, "epochs": args.epochs})["result"]
        return _said(args, f"trials {result['numbers']} go on to {result['epochs']} epochs")
    if (args.trials is None) == (args.epoch_budget is None):
        raise ValueError("give one of --trials N, --epoch-budget N or --top K --epochs E")
    payload = {"trials": args.trials} if args.trials is not None else {"epochs": args.epoch_budget}
    result = _act(args, "more_trials", payload)["result"]
    return _said(args, f"budget now {result['n_trials'] or '-'} trials, "
                 f"{result['epoch_budget'] or '-'} epochs")


def _ranges(study: dict, items: list[str]) -> dict:
    dims = {**study["space"].get("params", {})}
    out = {}
    for name, value in _pairs(items, "--range").items():
        old = dims.get(name, {"type": "float", "scale": "linear"})
        if old.get("type") == "choice":
            options = value if isinstance(value, list) else str(value).split(",")
            out[name] = {"type": "choice", "options": [_value(str(o)) for o in options]}
            continue
        parts = str(value).split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"--range {name}= must be low:high[:scale], got {value!r}")
        low, high = _value(parts[0]), _value(parts[1])
        out[name] = {"type": old.get("type", "float"), "low": low, "high": high,
                     "scale": parts[2] if len(parts) == 3 else old.get("scale", "linear")}
    return out


def cmd_space(args: argparse.Namespace) -> int:
    from engine.storage.studies import get_study

    study = get_study(_db(args), args.study_id)
    payload = {"params": _ranges(study, args.range), "fix": _pairs(args.fix, "--fix")}
    if not payload["params"] and not payload["fix"]:
        raise ValueError("give --range name=low:high and/or --fix name=value")
    result = _act(args, "set_space", payload)["result"]
    outside = result["outside"]
    return _said(args, "space changed" + (f"; trials {outside} are now outside it"
                                          if outside else ""))


def cmd_note(args: argparse.Namespace) -> int:
    _act(args, "note", {"text": " ".join(args.text)})
    return _said(args, "note saved")


def cmd_rename(args: argparse.Namespace) -> int:
    _act(args, "rename", {"name": " ".join(args.name)})
    return _said(args, "renamed")


def cmd_archive(args: argparse.Namespace) -> int:
    _act(args, "archive", {"archived": not args.undo})
    return _said(args, "unarchived" if args.undo else "archived")


def cmd_rank(args: argparse.Namespace) -> int:
    _act(args, "rank_by", {"at": args.at})
    return _said(args, f"trials ranked at {args.at}")


def cmd_delete(args: argparse.Namespace) -> int:
    from engine.storage.studies import get_study
    from engine.study.actions import remove_study

    conn = _db(args)
    name = get_study(conn, args.study_id)["name"]
    if not args.yes:
        raise ValueError(f"deleting study {args.study_id} ({name!r}) removes its trials, "
                         "metrics and checkpoints; add --yes to confirm")
    remove_study(conn, args.study_id, confirm=name)
    return _said(args, "deleted")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the study-action sub-commands on ``python -m engine``'s parser."""
    def leaf(name: str, help_: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        p.add_argument("study_id", type=int, metavar="ID")
        p.add_argument("--db", default=None, metavar="PATH", help="database file")
        p.set_defaults(func=func)
        return p

    p = leaf("trial", "add, clone, stop, note or name one trial of a study", cmd_trial)
    p.add_argument("what", choices=("add", "clone", "stop", "note", "name"))
    p.add_argument("number", nargs="?", default=None, metavar="TRIAL",
                   help="the trial's number (clone, stop, note, name)")
    p.add_argument("values", nargs="*", metavar="NAME=VALUE | TEXT",
                   help="add: a value for every searched parameter; clone: the edits; "
                   "note/name: the text")
    p.add_argument("--name", default=None, help="add/clone: the new trial's name")
    p.add_argument("--note", default=None, help="add/clone: a note on the new trial")
    p.add_argument("--start", action="store_true", help="start the runner to train it")
    p.epilog = "e.g. trial 3 add learning_rate=0.01 l2=1e-5; trial 3 clone 7 learning_rate=0.02"

    p = leaf("extend", "more trials, a larger epoch budget, or more epochs for the top k",
             cmd_extend)
    p.add_argument("--trials", type=int, default=None, metavar="N", help="N more trials")
    p.add_argument("--epoch-budget", type=int, default=None, metavar="N",
                   help="N more epochs in the study's epoch budget")
    p.add_argument("--top", type=int, default=None, metavar="K",
                   help="the best K finished trials (by the study's rank choice) go on")
    p.add_argument("--epochs", type=int, default=None, metavar="E", help="--top: to E epochs")
    p.add_argument("--start", action="store_true", help="start the runner to train them")

    p = leaf("space", "change a range or fix a knob for the trials still to be asked",
             cmd_space)
    p.add_argument("--range", action="append", default=[], metavar="NAME=LOW:HIGH[:SCALE]",
                   help="a new range (a choice: NAME=a,b,c); earlier trials outside it stay, "
                   "marked")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="stop searching NAME; new trials use VALUE")

    p = leaf("note", "set the study's note", cmd_note)
    p.add_argument("text", nargs="+")
    p = leaf("rename", "rename the study", cmd_rename)
    p.add_argument("name", nargs="+")
    p = leaf("archive", "hide the study from the pickers (nothing is deleted)", cmd_archive)
    p.add_argument("--undo", action="store_true", help="unarchive")
    p = leaf("rank", "rank trials by their best epoch, last epoch or epoch K", cmd_rank)
    p.add_argument("at", help="best | last | an epoch number")
    p = leaf("delete", "delete a stopped study with its trials, metrics and checkpoints",
             cmd_delete)
    p.add_argument("--yes", action="store_true", help="confirm")
