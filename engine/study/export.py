"""CSV exports of a study: one row per trial, or one row per trial epoch.

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

from engine.storage.studies import METRIC_COLUMNS, get_study, list_trials, study_metrics

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TRIAL_COLUMNS = (
    "trial_id", "number", "state", "epochs_done", "target_epochs", "best_val_acc",
    "best_val_loss", "last_val_acc", "last_val_loss", "seconds", "attempts", "error",
)


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


def export_trials_csv(conn: sqlite3.Connection, study_id: int) -> str:
    """One row per trial: ``TRIAL_COLUMNS`` then one column per parameter (space order)."""
    study = get_study(conn, study_id)
    trials = list_trials(conn, study_id)
    names = list(study["space"].get("params", {})) + list(study["space"].get("fixed", {}))
    for trial in trials:
        names += [n for n in trial["params"] if n not in names]
    rows = [
        [trial["id" if c == "trial_id" else c] for c in TRIAL_COLUMNS]
        + [trial["params"].get(n) for n in names]
        for trial in trials
    ]
    return _write([*TRIAL_COLUMNS, *names], rows)


def export_metrics_csv(conn: sqlite3.Connection, study_id: int) -> str:
    """One row per trial epoch: ``METRIC_COLUMNS``."""
    get_study(conn, study_id)  # NotFoundError for a missing study
    columns = study_metrics(conn, study_id)
    rows = [list(row) for row in zip(*(columns[c] for c in METRIC_COLUMNS))]
    return _write(list(METRIC_COLUMNS), rows)
