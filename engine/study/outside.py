"""Trials against a space that changed under them: which params fall outside it, and where
they sit in its unit cube.

A study's range can be narrowed or a knob fixed while it runs; its earlier trials stay, with
their params as they were trained. Their unit point (what samplers learn from) is recomputed in
the new space with each value clipped into its range (a value not among a choice's options sits
in the middle), and they are marked as outside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.search import SpaceError


def _clipped_unit(dim, value: Any) -> tuple[float, bool]:
    try:
        return float(dim.to_unit(value)), False
    except (SpaceError, TypeError, ValueError):
        pass
    low, high = getattr(dim, "low", None), getattr(dim, "high", None)
    if low is not None and isinstance(value, int | float) and not isinstance(value, bool):
        return float(dim.to_unit(min(max(value, low), high))), True
    return 0.5, True


def unit_and_outside(space, params: Mapping[str, Any]) -> tuple[list[float], list[str]]:
    """The trial's unit point in ``space`` and the names of its params outside it (a searched
    name the trial has no value for counts as outside, at the middle; so does a fixed knob the
    trial trained with another value)."""
    unit, outside = [], []
    for name, dim in space.params.items():
        if name not in params:
            unit.append(0.5)
            outside.append(name)
            continue
        u, out = _clipped_unit(dim, params[name])
        unit.append(u)
        if out:
            outside.append(name)
    outside += [n for n, v in space.fixed.items() if n in params and params[n] != v]
    return unit, outside


def outside_names(space_dict: dict, params: Mapping[str, Any]) -> list[str]:
    """The names of ``params`` outside the study's current space (empty: inside)."""
    from engine.search import Space

    return unit_and_outside(Space.from_dict(space_dict), params)[1]
