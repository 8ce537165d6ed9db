"""CSV exports of a study: one row per trial, or one row per trial epoch.

The metrics file carries each epoch's network health (``engine.storage.health``) as columns
``health_<key>`` (the keys any epoch of the study has, summary first, then layer by layer;
empty where an epoch was not measured); the trials file names each trial's flags
(``engine.diagnosis``) in a ``flags`` column, their texts joined by "; ".

Exported files are opened in spreadsheets, which run a cell that starts with ``=``, ``+``,
``-`` or ``@`` (or a tab / carriage return) as a formula. Text cells starting so are prefixed
with a single quote; numbers are written as numbers (a negative value stays a number).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from numbers import Real

from engine.storage.health import health_columns
from engine.storage.studies import METRIC_COLUMNS, get_study, list_trials, study_metrics

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TRIAL_COLUMNS = (
    "trial_id", "number", "state", "epochs_done", "target_epochs", "best_val_acc",
    "best_val_loss", "last_val_acc", "last_val_loss", "seconds", "attempts", "error", "flags",
)
HEALTH_PREFIX = "health_"


def escape_cell(value: object) -> object:
    """A CSV-safe cell: text starting with = + - @ (tab, CR) gets a leading single quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Real):
        return value
    text = value if isinstance(value, str) else json.dumps(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _write(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([escape_cell(h) for h in header])
    writer.writerows([escape_cell(v) for v in row] for row in rows)
    return out.getvalue()


def _trial_cell(trial: dict, column: str) -> object:
    if column == "trial_id":
        return trial["id"]
    if column == "flags":
        return "; ".join(f["text"] for f in trial["flags"])
    return trial[column]


def export_trials_csv(conn: sqlite3.Connection, study_id: int) -> str:
    """One row per trial: ``TRIAL_COLUMNS`` then one column per parameter (space order)."""
    study = get_study(conn, study_id)
    trials = list_trials(conn, study_id)
    names = list(study["space"].get("params", {})) + list(study["space"].get("fixed", {}))
    for trial in trials:
        names += [n for n in trial["params"] if n not in names]
    rows = [
        [_trial_cell(trial, c) for c in TRIAL_COLUMNS] + [trial["params"].get(n) for n in names]
        for trial in trials
    ]
    return _write([*TRIAL_COLUMNS, *names], rows)


def export_metrics_csv(conn: sqlite3.Connection, study_id: int) -> str:
    """One row per trial epoch: ``METRIC_COLUMNS``, then ``health_<key>`` for each health key
    measured in the study."""
    get_study(conn, study_id)  # NotFoundError for a missing study
    columns = study_metrics(conn, study_id, health=True)
    healths = columns["health"]
    keys = health_columns(healths)
    rows = [
        [*row, *((h or {}).get(k) for k in keys)]
        for row, h in zip(zip(*(columns[c] for c in METRIC_COLUMNS)), healths)
    ]
    return _write([*METRIC_COLUMNS, *(HEALTH_PREFIX + k for k in keys)], rows)
