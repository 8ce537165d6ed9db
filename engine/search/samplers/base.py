"""The sampler contract, stated once: where to try next, as a point of the space's unit cube.

A sampler is a small object holding only its settings (JSON round trip: ``to_dict`` and
``engine.search.samplers.sampler_from_dict``). The study runner asks it for one trial at a time,
each time a worker slot frees, and tells it about each trial that finishes:

- ``ask(space, history, rng) -> np.ndarray | None``: the unit point ``(d,)`` (entries in
  ``[0, 1]``, ``d = space.n_dims``) of trial ``history.number``, or ``None`` when the sampler
  has nothing left to propose (an exhausted grid). ``history`` is every trial asked so far
  (:class:`~engine.search.history.History`: finished ones with their scores, pending ones with
  their points); ``rng`` is ``ask_rng(history.seed, history.number)``. **An answer depends only
  on the sampler's settings and these arguments**, so a restarted runner that rebuilds the same
  history asks the same point, and nothing a sampler keeps between calls may change it.
- ``tell(space, history, trial)``: trial ``trial`` has just finished (``history`` includes it).
  A hook for caches and logs; the default does nothing.
- ``describe(space, history) -> dict | None``: what the search believes now, as JSON (a zoom
  box, a model's prediction), for the dashboard; ``None`` when there is nothing to show.
- ``validate(space)``: raise :class:`SpaceError` if the sampler cannot run on ``space``.
- ``default_n(space)``: the trial budget ``n_trials=None`` means (a grid: every point), or None.

``learns`` says whether answers depend on the results in the history. Samplers that do not
learn derive from :class:`SequenceSampler`: sampled trial ``k`` (counting only the trials the
sampler proposed, not those added by hand) is row ``k`` of a seeded sequence, the same as
``sample_unit(space, k + 1, seed)[k]`` for prefix-stable sequences.

``sample_unit(space, n, seed)`` / ``sample(space, n, seed)`` ask ``n`` points in a row with no
results (previews, the CLI's ``sample``, tests).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from engine.search.history import History, TrialRecord, ask_rng
from engine.search.scales import SpaceError
from engine.search.space import Space

REGISTRY: dict[str, type[Sampler]] = {}


def count(value: Any, field: str, minimum: int) -> int:
    """An integer ``>= minimum`` (not a bool), or a SpaceError naming the field and value."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise SpaceError(f"{field} must be an integer >= {minimum}, got {field}={value!r}")
    return int(value)


class Sampler(ABC):
    """Base class. Subclasses set ``kind`` (registered on definition) and implement ``_ask``
    and ``to_dict``."""

    kind: ClassVar[str]
    learns: ClassVar[bool] = False
    #: one sentence on when to use this kind (the designer and the CLI show it)
    summary: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str):
            if kind in REGISTRY and REGISTRY[kind].__qualname__ != cls.__qualname__:
                raise TypeError(f"sampler kind {kind!r} is registered twice")
            REGISTRY[kind] = cls

    # -- the contract ---------------------------------------------------------------------
    def validate(self, space: Space) -> None:
        """Raise SpaceError if this sampler cannot run on ``space`` (any space, by default)."""
        return None

    def default_n(self, space: Space) -> int | None:
        """How many trials ``n_trials=None`` means (``None``: a budget is required)."""
        return None

    def ask(self, space: Space, history: History, rng: np.random.Generator) -> np.ndarray | None:
        """The unit point of trial ``history.number``, or None when nothing is left to try."""
        u = self._ask(space, history, rng)
        if u is None:
            return None
        u = np.asarray(u, dtype=np.float64).reshape(-1)
        if u.shape != (space.n_dims,):
            raise AssertionError(f"{self.kind} asked a point of shape {u.shape}")
        return np.clip(u, 0.0, 1.0)

    def tell(self, space: Space, history: History, trial: TrialRecord) -> None:
        """Trial ``trial`` finished (``history`` includes it); nothing to do by default."""
        return None

    def describe(self, space: Space, history: History) -> dict | None:
        """What the search believes now, as JSON for the dashboard; None by default."""
        return None

    @abstractmethod
    def _ask(self, space: Space, history: History, rng: np.random.Generator):
        """The point ``(d,)`` for trial ``history.number`` (clipped by ``ask``), or None."""

    @abstractmethod
    def to_dict(self) -> dict:
        """JSON-ready settings including ``"kind"``."""

    # -- batch use: previews, the CLI, tests ----------------------------------------------
    def sample_unit(self, space: Space, n: int | None = None, seed: int = 0) -> np.ndarray:
        """``n`` points asked in a row with no results, shape ``(n, d)``, deterministic for a
        seed; a SpaceError if the sampler runs out first."""
        n, seed = self._batch_args(space, n, seed)
        history = History(seed=seed, n_trials=n)
        rows = []
        for k in range(n):
            u = self.ask(space, history, ask_rng(seed, k))
            if u is None:
                raise SpaceError(f"the {self.kind} sampler has only {k} points, asked for n={n}")
            rows.append(u)
            record = TrialRecord(k, tuple(u.tolist()), space.params_from_unit(u))
            history = history.with_trial(record)
        return np.stack(rows) if rows else np.zeros((0, space.n_dims))

    def sample(self, space: Space, n: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` params dicts (fixed values merged), deterministic for a seed."""
        return [space.params_from_unit(u) for u in self.sample_unit(space, n, seed)]

    def _batch_args(self, space: Space, n: int | None, seed: int) -> tuple[int, int]:
        if n is None:
            n = self.default_n(space)
            if n is None:
                raise SpaceError(f"n is required for the {self.kind} sampler")
        n = count(n, "n", 0)
        seed = count(seed, "seed", 0)
        self.validate(space)
        return n, seed

    # -- value semantics ------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sampler):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        settings = {k: v for k, v in self.to_dict().items() if k != "kind"}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in settings.items())})"


class SequenceSampler(Sampler):
    """A sampler that does not learn: its ``k``-th proposal is row ``k`` of a seeded sequence.

    Subclasses implement ``_sequence(space, n, rng) -> (n, d)``; the sequence is prefix-stable
    (the first ``m`` rows do not depend on ``n``) unless ``prefix_stable = False``, in which case
    the whole study's budget (``history.n_trials``) is drawn at once and row ``k`` taken."""

    prefix_stable: ClassVar[bool] = True

    def _ask(self, space: Space, history: History, rng: np.random.Generator):
        k = sum(1 for t in history.trials if t.origin == "sampler")
        if self.prefix_stable:
            length = 1 << (max(k + 1, 16) - 1).bit_length()  # doubling: few regenerations
            limit = self.default_n(space)
            if limit is not None:
                if k >= limit:
                    return None
                length = min(limit, length)
        else:
            if history.n_trials is None:
                raise SpaceError(
                    f"the {self.kind} sampler draws the whole study at once: it needs a number "
                    "of trials (n_trials)"
                )
            length = history.n_trials
            if k >= length:
                return None
        rows = self._rows(space, length, history.seed)
        return rows[k]

    def _rows(self, space: Space, n: int, seed: int) -> np.ndarray:
        """The first ``n`` rows, cached (a study asks them one by one; doubling keeps it cheap)."""
        key = (json.dumps(space.to_dict(), sort_keys=True), seed)
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] == key and len(cached[1]) >= n:
            return cached[1]
        rows = np.asarray(self._sequence(space, n, np.random.default_rng(seed)), np.float64)
        if rows.shape != (n, space.n_dims):
            raise AssertionError(f"{self.kind} made a sequence of shape {rows.shape}")
        self._cache = (key, np.clip(rows, 0.0, 1.0))
        return self._cache[1]

    def sample_unit(self, space: Space, n: int | None = None, seed: int = 0) -> np.ndarray:
        n, seed = self._batch_args(space, n, seed)
        limit = self.default_n(space)
        if limit is not None and n > limit:
            raise SpaceError(f"the {self.kind} sampler has only {limit} points, asked for n={n}")
        return self._rows(space, n, seed)[:n].copy()

    @abstractmethod
    def _sequence(self, space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, d)`` unit points; ``rng`` is ``default_rng(seed)``."""
