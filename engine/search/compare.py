"""Small summaries for the Compare page: running best score and how varied a parameter was."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any


def best_so_far(scores: Sequence[float | None], maximize: bool = True) -> list[float | None]:
    """Running best of ``scores`` in trial order (higher is better when ``maximize``).

    Missing or non-finite scores (failed, diverged trials) do not count: the running best
    carries over, and stays ``None`` until the first finite score.
    """
    best: float | None = None
    out: list[float | None] = []
    for score in scores:
        finite = isinstance(score, Real) and not isinstance(score, bool) and math.isfinite(score)
        if finite and (best is None or (score > best if maximize else score < best)):
            best = float(score)
        out.append(best)
    return out


def _key(value: Any) -> tuple:
    if isinstance(value, bool) or not isinstance(value, Real):
        return (type(value).__name__, repr(value))
    return ("number", float(value))  # 64 and 64.0 are the same value


def distinct_values(params_list: Iterable[Mapping[str, Any]], name: str) -> int:
    """How many different values ``name`` took across ``params_list`` (absent ones skipped)."""
    return len({_key(params[name]) for params in params_list if name in params})
