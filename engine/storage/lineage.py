"""Population-based training's exploits in SQLite: a trial takes over a better trial's model.

``record_exploit`` is one transaction: the recipient trial's latest checkpoint becomes the
donor's (the donor's own stored checkpoint row is shared, no bytes copied, unless a copy is
given), its ``params`` become the explored ones, and a ``trial_lineage`` row records who copied
whom at which epoch. The trial's ``unit`` stays the sampler's point, so the params it started
with remain known (``Space.params_from_unit``). Both trials must have trained to exactly that epoch,
so the recipient's curve goes on from the next epoch with no gap and no repeat: its metrics
rows up to the exploit are its own, the ones after it come from the copied model.
"""

from __future__ import annotations

import json
import sqlite3

from engine.storage.blobs import (
    NotFoundError,
    atomic,
    delete_checkpoint_if_unused,
    save_checkpoint,
)
from engine.storage.db import now


def _trial(conn: sqlite3.Connection, trial_id: int, role: str) -> sqlite3.Row:
    row = conn.execute(
        "SELECT id, study_id, number, epochs_done, checkpoint_id FROM trials WHERE id = ?",
        (trial_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no {role} trial with id={trial_id}")
    return row


def record_exploit(
    conn: sqlite3.Connection,
    recipient_id: int,
    donor_id: int,
    epoch: int,
    params: dict,
    checkpoint: bytes | None = None,
) -> int:
    """Give trial ``recipient_id`` the donor's checkpoint at ``epoch`` and ``params`` (one
    transaction) and return the lineage row's id.

    ``checkpoint=None`` shares the donor's stored checkpoint row (it must be at ``epoch``);
    bytes are stored as the recipient's own copy. ``ValueError`` unless both trials belong to one
    study, differ, and have trained exactly ``epoch`` epochs.
    """
    with atomic(conn):
        recipient = _trial(conn, recipient_id, "recipient")
        donor = _trial(conn, donor_id, "donor")
        if recipient_id == donor_id or recipient["study_id"] != donor["study_id"]:
            raise ValueError(
                f"a trial copies another trial of its own study: got recipient {recipient_id} "
                f"(study {recipient['study_id']}), donor {donor_id} (study {donor['study_id']})"
            )
        for role, row in (("recipient", recipient), ("donor", donor)):
            if row["epochs_done"] != epoch:
                raise ValueError(
                    f"{role} trial {row['id']} has {row['epochs_done']} epochs recorded; an "
                    f"exploit at epoch={epoch} needs both trials at that epoch"
                )
        if checkpoint is not None:
            new_id = save_checkpoint(conn, checkpoint, epoch=epoch)
        elif donor["checkpoint_id"] is None:
            raise ValueError(f"donor trial {donor_id} has no checkpoint to copy")
        else:
            new_id = donor["checkpoint_id"]
        at = now()
        conn.execute(
            "UPDATE trials SET checkpoint_id = ?, params_json = ?, updated_at = ? WHERE id = ?",
            (new_id, json.dumps(params), at, recipient_id),
        )
        old = recipient["checkpoint_id"]
        if old is not None and old != new_id:
            delete_checkpoint_if_unused(conn, old)
        cursor = conn.execute(
            "INSERT INTO trial_lineage (trial_id, epoch, donor_trial_id, params_json, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (recipient_id, int(epoch), donor_id, json.dumps(params), at),
        )
    return int(cursor.lastrowid)


def trial_lineage(conn: sqlite3.Connection, study_id: int) -> list[dict]:
    """Every exploit of the study, by epoch then recipient number: ``{"id", "trial_id",
    "number", "epoch", "donor_trial_id", "donor_number", "params", "created_at"}``."""
    rows = conn.execute(
        "SELECT l.id, l.trial_id, t.number, l.epoch, l.donor_trial_id, d.number AS donor_number,"
        " l.params_json, l.created_at FROM trial_lineage l JOIN trials t ON t.id = l.trial_id"
        " JOIN trials d ON d.id = l.donor_trial_id WHERE t.study_id = ?"
        " ORDER BY l.epoch, t.number, l.id",
        (study_id,),
    ).fetchall()
    out = []
    for r in rows:
        row = {k: r[k] for k in ("id", "trial_id", "number", "epoch", "donor_trial_id",
                                 "donor_number", "created_at")}
        row["params"] = json.loads(r["params_json"])
        out.append(row)
    return out


def record_round(
    conn: sqlite3.Connection, epoch: int, exploits: list[tuple[int, int, dict]],
    resumed: list[int],
) -> None:
    """A population's round boundary in one transaction: each ``(recipient, donor, params)``
    exploit (``record_exploit``), then every trial of ``resumed`` (trial ids) set ``running``.
    A runner killed before the commit finds them all still paused and does the round again."""
    with atomic(conn):
        for recipient, donor, params in exploits:
            record_exploit(conn, recipient, donor, epoch, params)
        at = now()
        conn.executemany(
            "UPDATE trials SET state = 'running', updated_at = ? WHERE id = ?",
            [(at, trial_id) for trial_id in resumed],
        )
