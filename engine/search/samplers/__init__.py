"""Samplers: where a study tries next. The contract is in :mod:`.base`; each kind registers
itself in :data:`SAMPLERS` when its class is defined, and :func:`sampler_from_dict` rebuilds one
from its JSON.

- :mod:`.batch`: grid, random, quasi-random (Sobol, Latin hypercube): sequences, they do not learn.
- :mod:`.coarse`: coarse-to-fine inside a zoom box around a parent study's best trials.
- samplers that learn from the results (:mod:`.learning` is what they share: a Sobol start, the
  highest rung with enough results, pending points, the slices they show):
  :mod:`.zoom` (coarse to fine in rounds, in one study), :mod:`.tpe` (Parzen estimators),
  :mod:`.gp` (a Gaussian process and log expected improvement, :mod:`.acquisition`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from engine.search.samplers.base import REGISTRY, Sampler, SequenceSampler
from engine.search.samplers.batch import GridSampler, QuasiRandomSampler, RandomSampler
from engine.search.samplers.coarse import Box, CoarseToFineSampler
from engine.search.samplers.gp import GPSampler
from engine.search.samplers.tpe import TPESampler
from engine.search.samplers.zoom import ZoomSampler
from engine.search.scales import SpaceError

SAMPLERS: dict[str, type[Sampler]] = REGISTRY

__all__ = [
    "SAMPLERS", "Box", "CoarseToFineSampler", "GPSampler", "GridSampler", "QuasiRandomSampler",
    "RandomSampler", "Sampler", "SequenceSampler", "TPESampler", "ZoomSampler",
    "sampler_from_dict",
]


def sampler_from_dict(d: Mapping[str, Any]) -> Sampler:
    """Rebuild a sampler from its ``to_dict()``; unknown kinds or keys are a SpaceError."""
    kind = d.get("kind") if isinstance(d, Mapping) else None
    if kind not in SAMPLERS:
        raise SpaceError(f"unknown sampler kind {kind!r}; valid kinds: {', '.join(SAMPLERS)}")
    cls = SAMPLERS[kind]
    valid = list(inspect.signature(cls).parameters)
    unknown = sorted(set(d) - set(valid) - {"kind"})
    if unknown:
        raise SpaceError(f"unknown keys {unknown} for a {kind} sampler; valid keys: {valid}")
    parameters = inspect.signature(cls).parameters.values()
    required = [p.name for p in parameters if p.default is inspect.Parameter.empty]
    missing = [name for name in required if name not in d]
    if missing:
        optional = [name for name in valid if name not in required]
        hint = getattr(cls, "needs", "")
        raise SpaceError(
            f"a {kind} sampler needs {', '.join(missing)}" + (f" ({hint})" if hint else "")
            + (f"; optional keys: {', '.join(optional)}" if optional else "")
        )
    try:
        return cls(**{k: v for k, v in d.items() if k != "kind"})
    except TypeError as exc:  # a setting of the wrong type
        raise SpaceError(f"a {kind} sampler's settings {valid} do not fit: {exc}") from None
