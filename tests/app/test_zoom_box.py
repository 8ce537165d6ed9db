"""The zoom box table: formatted text in every cell, so Arrow converts it and a person reads it."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from app.zoom_box import box_rows, number

VALUES = {"learning_rate": [0.00031622776601683794, 0.0031622776601683794],
          "hidden_units": [16, 64], "dropout": [0.0, 0.25],
          "optimizer": ["sgd", "momentum", "rmsprop", "adam"], "batch_norm": [False, True]}


def test_the_old_mixed_columns_were_not_arrow_safe():
    raw = pd.DataFrame([{"parameter": k, "from": v[0], "to": v[-1]} for k, v in VALUES.items()])
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        pa.Table.from_pandas(raw)


def test_every_cell_is_text_and_arrow_converts_it():
    rows = box_rows(VALUES)
    table = pa.Table.from_pandas(pd.DataFrame(rows))
    assert all(pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in table.schema)
    by_name = {r["parameter"]: r for r in rows}
    assert by_name["learning_rate"] == {"parameter": "learning_rate", "from": "0.0003162",
                                        "to": "0.003162"}
    assert (by_name["hidden_units"]["from"], by_name["hidden_units"]["to"]) == ("16", "64")
    assert (by_name["dropout"]["from"], by_name["dropout"]["to"]) == ("0", "0.25")
    assert by_name["optimizer"]["from"] == "one of sgd, momentum, rmsprop, adam"
    assert by_name["batch_norm"]["from"] == "one of False, True"


def test_numbers_as_the_tables_show_them():
    assert [number(x) for x in (1e-05, 64, 0.1, 2.0, 123456.7)] == [
        "1e-05", "64", "0.1", "2", "1.235e+05"]


def test_a_choice_of_two_numbers_reads_as_its_options_not_an_interval():
    """A box keeps every option of a Choice: ``[32, 64]`` for a batch-size Choice is both
    options, not "from 32 to 64" (which reads as every size between)."""
    space = {"params": {"batch_size": {"type": "choice", "options": [32, 64]},
                        "hidden_units": {"type": "int", "low": 16, "high": 64}}}
    rows = {r["parameter"]: r for r in box_rows({"batch_size": [32, 64],
                                                  "hidden_units": [16, 64]}, space)}
    assert rows["batch_size"] == {"parameter": "batch_size", "from": "one of 32, 64", "to": ""}
    assert (rows["hidden_units"]["from"], rows["hidden_units"]["to"]) == ("16", "64")
