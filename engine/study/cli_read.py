"""``python -m engine list | show | export``: what a terminal reads of the studies.

The commands behind the parsers ``engine.study.cli`` builds (it loads this module only when
one of them runs). Reads only: the study tables through ``engine.storage.studies``, the CSV
exports through the facade.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _connect(args: argparse.Namespace):
    from engine.storage.db import connect, default_path

    return connect(Path(args.db) if args.db else default_path())


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def cmd_list(args: argparse.Namespace) -> int:
    from engine.storage.studies import list_studies

    studies = list_studies(_connect(args))
    if args.json:
        print(json.dumps(studies, indent=2))
        return 0
    print(f"{'id':>4}  {'status':<11} {'trials':>6} {'done':>5} {'best acc':>8} "
          f"{'epochs':>7}  name")
    for s in studies:
        c = s["counts"]
        finished = c["complete"] + c["pruned"] + c["diverged"] + c["failed"] + c["cancelled"]
        print(f"{s['id']:>4}  {s['status']:<11} {s['n_trials'] or '-':>6} {finished:>5} "
              f"{_fmt(s['best_val_acc']):>8} {s['epochs_done']:>7}  {s['name']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from engine.storage.studies import get_study, list_trials

    conn = _connect(args)
    study, trials = get_study(conn, args.study_id), list_trials(conn, args.study_id)
    if args.json:
        print(json.dumps({"study": study, "trials": trials}, indent=2))
        return 0
    counts = ", ".join(f"{k} {v}" for k, v in study["counts"].items() if v)
    print(f"study {study['id']}: {study['name']}\n  status {study['status']}  ({counts})")
    print(f"  dataset {json.dumps(study['dataset'])}\n  sampler {study['sampler']['kind']}"
          f"  scheduler {json.dumps(study['scheduler'])}  workers {study['workers']}"
          + (f" on {study['executor_address']}" if study["executor_address"] else ""))
    budget = [f"{study['n_trials']} trials"] * bool(study["n_trials"]) + \
        [f"{study['epoch_budget']} epochs in all"] * bool(study["epoch_budget"])
    print(f"  objective {study['objective']['metric']}  budget {' and '.join(budget)}")
    if study["message"]:
        print(f"  message: {study['message']}")
    if study.get("archived"):
        print("  archived (hidden from the dashboard's lists)")
    if (study.get("notes") or "").strip():
        print("  notes: " + _indented(study["notes"], 9))
    names = list(study["space"].get("params", {}))
    print(f"{'#':>4}  {'state':<9} {'epochs':>7} {'best acc':>8} {'last loss':>9}  "
          f"{'from':<24}  " + "  ".join(names))
    for t in trials:
        values = "  ".join(f"{t['params'].get(n)!s:.10}" for n in names)
        print(f"{t['number']:>4}  {t['state']:<9} {t['epochs_done']:>3}/{t['target_epochs']:<3} "
              f"{_fmt(t['best_val_acc']):>8} {_fmt(t['last_val_loss']):>9}  "
              f"{trial_source(t):<24}  {values}")
        if (t.get("name") or "").strip():
            print(f"      name: {t['name'].strip()}")
        if (t.get("notes") or "").strip():
            print("      notes: " + _indented(t["notes"], 13))
        if t["error"] and args.errors:
            print("      " + t["error"].strip().replace("\n", "\n      "))
    return 0


def trial_source(trial: dict) -> str:
    """Where a trial came from, in a few words: ``sampler``, ``by hand``, ``clone of trial 3``,
    ``session 2 (trial 5 @ epoch 4)`` (returned from babysitting)."""
    source = trial.get("source") or {}
    if source.get("kind") == "clone":
        return f"clone of trial {source.get('number')}"
    if source.get("kind") == "session" or trial.get("origin") == "session":
        return (f"session {source.get('session_id')} (trial {source.get('number')} @ epoch "
                f"{source.get('epoch')})")
    return "by hand" if trial.get("origin") == "user" else "sampler"


def _indented(text: str, width: int) -> str:
    return text.strip().replace("\n", "\n" + " " * width)


def cmd_export(args: argparse.Namespace) -> int:
    from engine.study.facade import export_metrics_csv, export_trials_csv

    export = export_trials_csv if args.what == "trials" else export_metrics_csv
    text = export(_connect(args), args.study_id)
    if args.output and args.output != "-":
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({text.count(chr(10)) - 1} rows)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
