"""Loading a session's TrainState and dataset, and what a runner keeps of them in memory.

``load_state_at`` reads a node's checkpoint (``CheckpointPruned`` if the retention budget dropped
it); ``Live`` caches the dataset and the head's TrainState between epochs so a runner does not
rebuild or reload them, and reloads only when the head moved (a rollback).
"""

from __future__ import annotations

import sqlite3

from engine.data import Dataset, DatasetSpec, build_dataset
from engine.nn import TrainState, state_from_bytes
from engine.storage import blobs
from engine.storage import sessions as store


def load_state_at(conn: sqlite3.Connection, node_id: int) -> TrainState:
    """The TrainState stored at a node; ``store.CheckpointPruned`` if its blob was pruned."""
    node = store.get_node(conn, node_id)
    if node["checkpoint_id"] is None:
        raise store.CheckpointPruned(
            f"the checkpoint of epoch {node['epoch']} (branch {node['branch']}, node {node_id}) "
            "is not kept (retention budget, or an adopted trial's earlier epoch); see "
            "session_view(...)['rollback_targets'] for the epochs that can be loaded"
        )
    return state_from_bytes(store.read_checkpoint(conn, node["checkpoint_id"]))


def build_session_dataset(conn: sqlite3.Connection, dataset: dict) -> Dataset:
    """Rebuild a session's dataset from its spec dict (an uploaded CSV is read from storage)."""
    spec = DatasetSpec.from_dict(dataset)
    csv_text = blobs.get_upload(conn, spec.csv_sha256) if spec.kind == "csv" else None
    return build_dataset(spec, csv_text)


class Live:
    """What a runner keeps in memory between epochs: the dataset and the head's TrainState."""

    def __init__(self) -> None:
        self.dataset: Dataset | None = None
        self.dataset_key: str | None = None
        self.state: TrainState | None = None
        self.node_id: int | None = None

    def head_state(self, conn: sqlite3.Connection, session: dict) -> TrainState:
        if self.state is None or self.node_id != session["head_node_id"]:
            self.state = load_state_at(conn, session["head_node_id"])
            self.node_id = session["head_node_id"]
        return self.state

    def data(self, conn: sqlite3.Connection, session: dict) -> Dataset:
        key = repr(sorted(session["dataset"].items()))
        if self.dataset is None or key != self.dataset_key:
            self.dataset = build_session_dataset(conn, session["dataset"])
            self.dataset_key = key
        return self.dataset
