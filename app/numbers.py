"""Numbers as the dashboard prints them in boxes and metrics, short enough for a narrow column
and never rounded to zero: 0.0001 -> "1e-4", not "0.000" (issue 12 item 16).

- ``fmt(value)``: exact (``float(fmt(v)) == v``), for a box a person edits: the shortest digits,
  scientific below 1e-3 and from 1e6.
- ``short(value, digits=3)``: ``digits`` significant digits, same switch to scientific, for a
  number to read (a metric, a caption).
"""

from __future__ import annotations

import math
from decimal import Decimal

SCIENTIFIC_BELOW = 1e-3
SCIENTIFIC_FROM = 1e6


def _compact(exact: Decimal, number: float) -> str:
    if SCIENTIFIC_BELOW <= abs(number) < SCIENTIFIC_FROM:
        return format(exact, "f")
    return format(exact, "e").replace("e+", "e")


def fmt(value: float) -> str:
    """0.0001 -> '1e-4', 2.5e-05 -> '2.5e-5', 1e-10 -> '1e-10', 0.9999 -> '0.9999', 0.001 ->
    '0.001', 20 -> '20', 2e6 -> '2e6'; ``float(fmt(v)) == v``."""
    number = float(value)
    if number == 0 or not math.isfinite(number):
        return "0" if number == 0 else str(number)
    return _compact(Decimal(repr(number)).normalize(), number)


def short(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits: 0.000123456 -> '1.23e-4', 0.0123456 ->
    '0.0123', 0.99999 -> '1', 1234.5 -> '1230' (3 digits)."""
    number = float(value)
    if number == 0 or not math.isfinite(number):
        return "0" if number == 0 else str(number)
    rounded = float(f"{number:.{digits}g}")
    return _compact(Decimal(repr(rounded)).normalize(), rounded)


def elapsed(seconds: float) -> str:
    """A duration short enough for a narrow metric: 63 -> '63 s', 754 -> '13 min', 9000 ->
    '2.5 h' (a study's '4,321 s' needed 120 px where the live page's column has under 100)."""
    seconds = max(0.0, float(seconds))
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 100 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
