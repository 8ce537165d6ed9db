"""Dataset helpers for the pages: a cached build, and the checks an uploaded CSV goes through.

The CSV path is plain functions (no widgets) so tests can drive it without a browser:
``read_upload(bytes) -> (text, columns)`` decodes the file and lists its header's columns, then
``check_and_store(conn, name, text, label_column) -> (spec dict, summary)`` parses and builds it
through the engine (every problem is a ``CSVError`` naming the row or column) and stores the text
once in SQLite, addressed by its sha256.
"""

from __future__ import annotations

import json
import sqlite3

import streamlit as st

from engine.data import (
    Dataset,
    DatasetSpec,
    build_dataset,
    csv_columns,
    csv_sha256,
    decode_csv_bytes,
    describe,
    display_name,
)
from engine.storage.blobs import get_upload, save_upload

LABEL_NAMES = ("label", "labels", "class", "target", "y")
DEFAULT_SPEC = {"kind": "moons", "n_samples": 400, "noise": 0.25, "seed": 0}


@st.cache_resource(show_spinner=False, max_entries=16)
def _build(spec_json: str, csv_text: str | None) -> Dataset:
    return build_dataset(DatasetSpec.from_dict(json.loads(spec_json)), csv_text)


def load_dataset(conn: sqlite3.Connection, spec: dict) -> Dataset:
    """Build (once per spec, cached for the server) the dataset a spec dict describes; an
    uploaded CSV's text comes from the database."""
    spec_obj = DatasetSpec.from_dict(spec)
    text = get_upload(conn, spec_obj.csv_sha256) if spec_obj.kind == "csv" else None
    return _build(json.dumps(spec_obj.to_dict(), sort_keys=True), text)


def spec_label(spec: dict) -> str:
    """A short name for a dataset spec dict."""
    try:
        return display_name(DatasetSpec.from_dict(spec))
    except ValueError:
        return str(spec.get("name") or spec.get("kind"))


def read_upload(data: bytes) -> tuple[str, list[str]]:
    """Decode an uploaded file (UTF-8) and return its text and header columns.

    Raises CSVError with a message for a person: not UTF-8, empty, or a header without columns.
    """
    text = decode_csv_bytes(data)
    return text, csv_columns(text)


def guess_label_column(columns: list[str]) -> str:
    """The column most likely to hold the labels: the one whose name comes first in
    ``LABEL_NAMES`` ('label' before 'y', so ``x, y, label`` gives 'label'), else the last."""
    by_name = {column.strip().lower(): column for column in reversed(columns)}
    for name in LABEL_NAMES:
        if name in by_name:
            return by_name[name]
    return columns[-1]


def check_and_store(
    conn: sqlite3.Connection, name: str, text: str, label_column: str, seed: int = 0
) -> tuple[dict, dict]:
    """Parse and build the CSV through the engine, then store it: (spec dict, summary).

    Nothing is stored when the file has a problem (the CSVError names the row or column).
    """
    spec = DatasetSpec(kind="csv", csv_sha256=csv_sha256(text), label_column=label_column,
                       name=(name or "upload.csv")[:200], seed=seed)
    dataset = build_dataset(spec, text)  # raises CSVError / ValueError before anything is kept
    save_upload(conn, spec.name, text)
    return spec.to_dict(), describe(dataset)

