"""Each trial's score under a rank choice, computed by SQLite (one aggregate query, no rows
of epochs brought into Python): what the importance view and the advice rank by."""

from __future__ import annotations

import sqlite3

EXPRESSIONS = {"val_acc": "m.val_acc", "train_acc": "m.train_acc", "val_loss": "m.val_loss",
               "train_loss": "m.train_loss", "val_error": "1.0 - m.val_acc"}


def trial_scores(conn: sqlite3.Connection, study_id: int, metric: str, at, *,
                 maximize: bool) -> dict[int, float]:
    """``{trial number: score}`` for the trials with one: ``at`` ``"best"`` (the best epoch in
    the objective's direction), ``"last"`` or an epoch number."""
    if metric not in EXPRESSIONS:
        raise ValueError(f"metric must be one of {sorted(EXPRESSIONS)}, got metric={metric!r}")
    expr = EXPRESSIONS[metric]
    if at == "best":
        sql = (f"SELECT t.number, {'MAX' if maximize else 'MIN'}({expr}) FROM trials t"
               " JOIN metrics m ON m.trial_id = t.id WHERE t.study_id = ? GROUP BY t.number")
        args: tuple = (study_id,)
    elif at == "last":
        sql = (f"SELECT t.number, {expr} FROM trials t JOIN metrics m ON m.trial_id = t.id"
               " AND m.epoch = t.epochs_done WHERE t.study_id = ?")
        args = (study_id,)
    else:
        sql = (f"SELECT t.number, {expr} FROM trials t JOIN metrics m ON m.trial_id = t.id"
               " AND m.epoch = ? WHERE t.study_id = ?")
        args = (int(at), study_id)
    return {int(n): float(v) for n, v in conn.execute(sql, args).fetchall() if v is not None}
