"""Readable tick labels for log axes.

Left to itself, Plotly labels a log axis that spans a decade or two with bare mantissas between
the powers of ten: hidden units from 30 to 200 read ``3 4 5 6 7 8 9 100 2``, and a loss that
jumps from 0.01 to 2,000 gets seventeen labels stacked on top of each other. ``log_ticks``
chooses the ticks itself from the values drawn: 1..9, 1-2-3-5, 1-2-5 or 1-3 steps per decade,
every decade or every few decades, the richest of these that keeps to ``max_ticks``, each
labelled with its full value (``30``, ``0.002``, ``1e-5``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

STEPS = ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 5), (1, 2, 5), (1, 3), (1,))
PAD = 10 ** 0.04  # Plotly pads a log axis around its markers: ticks just outside still show


def tick_text(value: float) -> str:
    """A tick label a person reads at a glance: ``30``, ``0.002``, ``1e-5``, ``2e6``."""
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.6g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _finite_positive(values: Iterable) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
            out.append(float(v))
    return out


def log_ticks(values: Iterable, max_ticks: int = 6) -> dict:
    """Plotly axis settings (``tickvals``, ``ticktext``) for a log axis showing ``values``.

    Returns ``{}`` (Plotly's own ticks) when there is no positive finite value or when the
    values sit so close together that no round number falls between them.
    """
    data = _finite_positive(values)
    if not data:
        return {}
    lo, hi = min(data) / PAD, max(data) * PAD
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks: list[float] = []
    for mantissas in STEPS:
        ticks = [m * 10.0**k for k in range(first, last + 1) for m in mantissas
                 if lo <= m * 10.0**k <= hi]
        if len(ticks) <= max_ticks:
            break
    else:  # more decades than ticks: every few decades
        every = math.ceil(len(ticks) / max_ticks)
        ticks = [10.0**k for k in range(first, last + 1) if k % every == 0 and lo <= 10.0**k <= hi]
    if len(ticks) < 2:
        return {}
    ticks = [float(f"{t:.12g}") for t in ticks]  # 3 * 0.1 -> 0.3, not 0.30000000000000004
    return {"tickvals": ticks, "ticktext": [tick_text(t) for t in ticks]}
