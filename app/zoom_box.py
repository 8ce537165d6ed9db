"""A zoom box as a table a person reads: one row per parameter, every cell text.

``Box.to_dict()["values"]`` holds ``(low, high)`` numbers for a Float or Int and the options for a
Choice. Put straight into ``st.dataframe``, a column then mixes floats and strings: Arrow cannot
convert it (a traceback in the server log for every redraw) and the floats show raw
(``0.0031622776601683794``). Here numbers get four significant digits, as the other tables, and a
Choice lists its options, so every column is one type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real


def number(value: object) -> str:
    """A bound as the tables show it: ``0.003162``, ``64``, ``1e-05``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{float(value):.4g}"


def box_rows(values: Mapping[str, Sequence],
             space: Mapping | None = None) -> list[dict[str, str]]:
    """``[{"parameter", "from", "to"}]``, all strings. A Choice: ``from`` its options joined,
    ``to`` blank (its values are options, not an interval). ``space`` (the study's space dict)
    says which parameters are Choices: without it two numbers read as an interval, which a
    Choice of two numbers (batch size 32 or 64) is not."""
    choices = {name for name, dim in (space or {}).get("params", {}).items()
               if dim.get("type") == "choice"}
    rows = []
    for name, covered in values.items():
        covered = list(covered)
        numeric = name not in choices and len(covered) == 2 and all(
            isinstance(v, Real) and not isinstance(v, bool) for v in covered)
        if numeric:
            rows.append({"parameter": str(name), "from": number(covered[0]),
                         "to": number(covered[1])})
        else:
            rows.append({"parameter": str(name),
                         "from": "one of " + ", ".join(str(v) for v in covered), "to": ""})
    return rows
