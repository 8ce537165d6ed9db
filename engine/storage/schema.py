"""The database schema and its version, in one place.

Studies (Caviar) own trials; a trial has per-epoch metrics and its latest checkpoint. Babysitting
sessions (Panda) own a tree of per-epoch nodes, each with an optional checkpoint, grouped into
branches, and a timeline of events. Checkpoints are blobs with their sha256 in one table shared by
both. Runners (detached processes) record their pid and heartbeat; the UI and the CLI talk to
them through intents. Uploaded CSV files are stored once, addressed by their sha256.

``migrate`` brings a database of any older version to ``SCHEMA_VERSION``; it runs inside the
transaction that ``engine.storage.db.connect`` opens. ``MIGRATIONS[v]`` takes a database from
version ``v - 1`` to ``v`` (``v = 1`` creates everything from scratch):

- 2: ``trial_lineage``, one row per population-based-training exploit (the trial that was
  replaced, the epoch, the donor it copied and the params it went on with).
- 3: ask/tell. ``studies.objective_json`` (what the study optimises; moved out of the scheduler
  and sampler dicts, whose ``maximize`` flags are dropped), ``studies.epoch_budget`` (a budget in
  total epochs, NULL for none; ``n_trials`` 0 now means no trial budget), ``studies.belief_json``
  (the sampler's latest ``describe()``), ``trials.origin`` (who proposed the trial: ``sampler``
  or ``user``), ``runners.pid_started`` (the runner process's start time, so a live pid on this
  host is recognised even when its heartbeat is late and a reused pid is not).
- 4: network health. ``metrics.health_json`` and ``session_nodes.health_json`` (the epoch's
  ``engine.storage.health.clean_health``, NULL when not measured), ``trials.health_json`` (the
  trial's last measured epoch's) and ``trials.flags_json`` (``engine.diagnosis.diagnose`` over
  its epochs, refreshed with every recorded segment; NULL before the first).
- 5: hands on the search. ``studies.notes``, ``studies.archived`` (hidden from the pickers, kept),
  ``studies.rank_json`` (how the views rank trials: ``{"at": "best" | "last" | k}``);
  ``trials.name``, ``trials.notes`` and ``trials.source_json`` (where a trial made by hand came
  from: a clone of another trial, or a babysitting session returned to its study);
  ``study_actions``, one row per action on a study (add a trial, extend, change the space, stop a
  trial, notes, ...): its runner, or the caller when none is alive, applies it and sets
  ``applied_at`` in the same transaction, so none is lost or applied twice.
- 6: ``drafts``, one row per form whose inputs outlive a browser refresh and a server restart
  (the search designer's, with the dataset chosen for it): a JSON object of plain values
  (``engine.storage.drafts``). Nothing else changes: a v5 database keeps all its rows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 6

_V1 = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS uploads (
    sha256     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    text       TEXT NOT NULL,
    n_bytes    INTEGER NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS checkpoints (
    id         INTEGER PRIMARY KEY,
    blob       BLOB NOT NULL,
    sha256     TEXT NOT NULL,
    n_bytes    INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS studies (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    space_json       TEXT NOT NULL,
    sampler_json     TEXT NOT NULL,
    scheduler_json   TEXT NOT NULL,
    dataset_json     TEXT NOT NULL,
    seed             INTEGER NOT NULL,
    n_trials         INTEGER NOT NULL,
    workers          INTEGER NOT NULL,
    executor_address TEXT NOT NULL DEFAULT '',
    parent_id        INTEGER REFERENCES studies(id),
    box_json         TEXT,
    status           TEXT NOT NULL DEFAULT 'queued',
    message          TEXT NOT NULL DEFAULT '',
    finished_at      REAL
);

CREATE TABLE IF NOT EXISTS trials (
    id            INTEGER PRIMARY KEY,
    study_id      INTEGER NOT NULL REFERENCES studies(id),
    number        INTEGER NOT NULL,
    params_json   TEXT NOT NULL,
    unit_json     TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'waiting',
    attempts      INTEGER NOT NULL DEFAULT 0,
    error         TEXT NOT NULL DEFAULT '',
    epochs_done   INTEGER NOT NULL DEFAULT 0,
    target_epochs INTEGER NOT NULL DEFAULT 0,
    best_val_acc  REAL,
    best_val_loss REAL,
    last_val_acc  REAL,
    last_val_loss REAL,
    seconds       REAL NOT NULL DEFAULT 0,
    checkpoint_id INTEGER REFERENCES checkpoints(id),
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    UNIQUE (study_id, number)
);
CREATE INDEX IF NOT EXISTS trials_by_study_state ON trials (study_id, state);

CREATE TABLE IF NOT EXISTS metrics (
    trial_id      INTEGER NOT NULL REFERENCES trials(id),
    epoch         INTEGER NOT NULL,
    train_loss    REAL NOT NULL,
    train_acc     REAL NOT NULL,
    val_loss      REAL NOT NULL,
    val_acc       REAL NOT NULL,
    learning_rate REAL NOT NULL,
    seconds       REAL NOT NULL,
    PRIMARY KEY (trial_id, epoch)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS sessions (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    model_json      TEXT NOT NULL,
    dataset_json    TEXT NOT NULL,
    config_json     TEXT NOT NULL,
    seed            INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'idle',
    head_node_id    INTEGER,
    branch          INTEGER NOT NULL DEFAULT 0,
    auto_json       TEXT,
    source_trial_id INTEGER,
    message         TEXT NOT NULL DEFAULT '',
    remaining_epochs INTEGER,
    n_params        INTEGER NOT NULL DEFAULT 0,
    retention_json  TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS session_nodes (
    id            INTEGER PRIMARY KEY,
    session_id    INTEGER NOT NULL REFERENCES sessions(id),
    parent_id     INTEGER REFERENCES session_nodes(id),
    branch        INTEGER NOT NULL,
    epoch         INTEGER NOT NULL,
    checkpoint_id INTEGER REFERENCES checkpoints(id),
    config_json   TEXT NOT NULL,
    train_loss    REAL,
    train_acc     REAL,
    val_loss      REAL,
    val_acc       REAL,
    learning_rate REAL,
    seconds       REAL,
    created_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_by_session ON session_nodes (session_id, branch, epoch);

CREATE TABLE IF NOT EXISTS session_branches (
    session_id     INTEGER NOT NULL REFERENCES sessions(id),
    branch         INTEGER NOT NULL,
    parent_branch  INTEGER,
    fork_node_id   INTEGER REFERENCES session_nodes(id),
    abandoned      INTEGER NOT NULL DEFAULT 0,
    created_at     REAL NOT NULL,
    PRIMARY KEY (session_id, branch)
);

CREATE TABLE IF NOT EXISTS session_events (
    id           INTEGER PRIMARY KEY,
    session_id   INTEGER NOT NULL REFERENCES sessions(id),
    at           REAL NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL DEFAULT 'user',
    branch       INTEGER NOT NULL,
    epoch        INTEGER NOT NULL,
    payload_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_by_session ON session_events (session_id, id);

CREATE TABLE IF NOT EXISTS runners (
    kind         TEXT NOT NULL,
    owner_id     INTEGER NOT NULL,
    pid          INTEGER NOT NULL,
    hostname     TEXT NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    stopped_at   REAL,
    PRIMARY KEY (kind, owner_id)
);

CREATE TABLE IF NOT EXISTS intents (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    owner_id     INTEGER NOT NULL,
    command      TEXT NOT NULL,
    payload_json TEXT NOT NULL DEFAULT '{}',
    created_at   REAL NOT NULL,
    consumed_at  REAL
);
CREATE INDEX IF NOT EXISTS intents_pending ON intents (kind, owner_id, consumed_at);
"""

_V2 = """
CREATE TABLE IF NOT EXISTS trial_lineage (
    id             INTEGER PRIMARY KEY,
    trial_id       INTEGER NOT NULL REFERENCES trials(id),
    epoch          INTEGER NOT NULL,
    donor_trial_id INTEGER NOT NULL REFERENCES trials(id),
    params_json    TEXT NOT NULL,
    created_at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS lineage_by_trial ON trial_lineage (trial_id, epoch);
"""

_V3 = """
ALTER TABLE studies ADD COLUMN objective_json TEXT;
ALTER TABLE studies ADD COLUMN epoch_budget INTEGER;
ALTER TABLE studies ADD COLUMN belief_json TEXT;
ALTER TABLE trials ADD COLUMN origin TEXT NOT NULL DEFAULT 'sampler';
ALTER TABLE runners ADD COLUMN pid_started TEXT
"""

_V4 = """
ALTER TABLE metrics ADD COLUMN health_json TEXT;
ALTER TABLE session_nodes ADD COLUMN health_json TEXT;
ALTER TABLE trials ADD COLUMN health_json TEXT;
ALTER TABLE trials ADD COLUMN flags_json TEXT
"""

_V5_COLUMNS = (
    ("studies", "notes", "TEXT NOT NULL DEFAULT ''"),
    ("studies", "archived", "INTEGER NOT NULL DEFAULT 0"),
    ("studies", "rank_json", "TEXT"),
    ("trials", "name", "TEXT NOT NULL DEFAULT ''"),
    ("trials", "notes", "TEXT NOT NULL DEFAULT ''"),
    ("trials", "source_json", "TEXT"),
)
_V5_TABLES = """
CREATE TABLE IF NOT EXISTS study_actions (
    id           INTEGER PRIMARY KEY,
    study_id     INTEGER NOT NULL REFERENCES studies(id),
    kind         TEXT NOT NULL,
    payload_json TEXT NOT NULL DEFAULT '{}',
    created_at   REAL NOT NULL,
    applied_at   REAL,
    result_json  TEXT,
    error        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS actions_pending ON study_actions (study_id, applied_at, id)
"""


_V6 = """
CREATE TABLE IF NOT EXISTS drafts (
    name        TEXT PRIMARY KEY,
    values_json TEXT NOT NULL,
    updated_at  REAL NOT NULL
)
"""


def _v5(conn: sqlite3.Connection) -> None:
    """Columns added only where missing (a database taken back to an older version by hand
    may still have them), then the actions table."""
    for table, column, declaration in _V5_COLUMNS:
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    _run_script(conn, _V5_TABLES)


def _v3(conn: sqlite3.Connection) -> None:
    """Schema changes, then each study's objective from its scheduler's old ``maximize``."""
    _run_script(conn, _V3)
    for row in conn.execute("SELECT id, scheduler_json FROM studies").fetchall():
        scheduler = json.loads(row[1])
        maximize = scheduler.pop("maximize", True)
        objective = {"metric": "val_acc" if maximize else "val_loss"}
        conn.execute(
            "UPDATE studies SET objective_json = ?, scheduler_json = ? WHERE id = ?",
            (json.dumps(objective), json.dumps(scheduler), row[0]),
        )


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {
    1: _V1, 2: _V2, 3: _v3, 4: _V4, 5: _v5, 6: _V6,
}


class SchemaError(RuntimeError):
    """The database was written by a newer version of Panda & Caviar."""


def schema_version(conn: sqlite3.Connection) -> int:
    """The version stored in the database, 0 for a new file."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection) -> None:
    """Create or upgrade the schema to ``SCHEMA_VERSION`` (call inside a write transaction)."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"database schema version {version} is newer than this program's "
            f"({SCHEMA_VERSION}); upgrade Panda & Caviar or use another database file"
        )
    if version == SCHEMA_VERSION:
        return
    for step in range(version + 1, SCHEMA_VERSION + 1):
        migration = MIGRATIONS[step]
        if callable(migration):
            migration(conn)
        else:
            _run_script(conn, migration)
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
        (str(SCHEMA_VERSION),),
    )
