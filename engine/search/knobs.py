"""The engine's tunable knobs: which names a search space may use, their domains and defaults.

Every field of ``engine.nn.TrainConfig``, the model's shape and layer choices (an MLP of
``hidden_layers`` layers of ``hidden_units`` units, ``activation``, ``batch_norm``, ``init``) and
the training budget ``n_epochs`` can be searched or fixed. :data:`KNOBS` is the table; a search
space checks every dimension and fixed value against it before anything runs, and
``engine.search.trial.trial_config`` fills unsearched knobs from its defaults (which mirror the
defaults of ``ModelSpec`` and ``TrainConfig`` in docs/CONTRACTS.md).

A ``float`` knob is searched with ``Float`` or ``Choice``, an ``int`` knob with ``Int`` or
``Choice``, a ``choice`` knob with ``Choice`` over (some of) its options.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

from engine.search.dimensions import Choice, Dimension, Float, Int
from engine.search.scales import SpaceError


@dataclass(frozen=True)
class Knob:
    """One tunable knob. ``low``/``high`` of ``None`` mean unbounded; ``*_open`` excludes it."""

    name: str
    kind: str  # "float" | "int" | "choice"
    target: str  # "train" (TrainConfig) | "model" (ModelSpec) | "budget"
    default: Any
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    options: tuple = ()

    def domain(self) -> str:
        """Human-readable domain, e.g. ``"in [0, 1)"``, ``"> 0"``, ``"one of 'sgd', 'adam'"``."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(o) for o in self.options)
        prefix = "an integer " if self.kind == "int" else ""
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{prefix}in {left}{self.low:g}, {self.high:g}{right}"
        return f"{prefix}{'>' if self.low_open else '>='} {self.low:g}"

    def _fits(self, value: Any) -> bool:
        if self.kind == "choice":
            return any(type(value) is type(o) and value == o for o in self.options)
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def check_value(self, value: Any, label: str = "value") -> None:
        """Raise SpaceError ``"dropout must be in [0, 1), got high=1.0"`` if ``value`` is out."""
        if not self._fits(value):
            raise SpaceError(f"{self.name} must be {self.domain()}, got {label}={value!r}")

    def check_dimension(self, dim: Dimension) -> None:
        """Raise SpaceError unless every value ``dim`` can produce is in this knob's domain."""
        if isinstance(dim, Choice):
            for option in dim.options:
                self.check_value(option, "option")
            return
        wanted = {"float": Float, "int": Int}.get(self.kind)
        if wanted is None or not isinstance(dim, wanted):
            use = {"float": "Float or Choice", "int": "Int or Choice"}.get(self.kind, "Choice")
            raise SpaceError(f"{self.name} is searched with {use}, not {type(dim).__name__}")
        self.check_value(dim.low, "low")
        self.check_value(dim.high, "high")


_UNIT = {"low": 0.0, "high": 1.0, "high_open": True}  # [0, 1): momenta, betas, dropout

KNOBS: dict[str, Knob] = {
    k.name: k
    for k in (
        Knob("learning_rate", "float", "train", 1e-3, low=0.0, low_open=True),
        Knob(
            "optimizer", "choice", "train", "adam", options=("sgd", "momentum", "rmsprop", "adam")
        ),
        Knob("momentum", "float", "train", 0.9, **_UNIT),
        Knob("beta1", "float", "train", 0.9, **_UNIT),
        Knob("beta2", "float", "train", 0.999, **_UNIT),
        Knob("epsilon", "float", "train", 1e-8, low=0.0, low_open=True),
        Knob("batch_size", "int", "train", 64, low=1, high=65536),
        Knob("l2", "float", "train", 0.0, low=0.0),
        Knob("dropout", "float", "train", 0.0, **_UNIT),
        Knob("bn_momentum", "float", "train", 0.9, **_UNIT),
        Knob(
            "decay",
            "choice",
            "train",
            "none",
            options=("none", "inverse", "exponential", "step"),
        ),
        Knob("decay_rate", "float", "train", 0.0, low=0.0),
        Knob("decay_every", "int", "train", 10, low=1),
        Knob("hidden_layers", "int", "model", 1, low=1, high=16),
        Knob("hidden_units", "int", "model", 64, low=1, high=4096),
        Knob(
            "activation",
            "choice",
            "model",
            "relu",
            options=("relu", "leaky_relu", "tanh", "sigmoid"),
        ),
        Knob("batch_norm", "choice", "model", True, options=(True, False)),
        Knob("init", "choice", "model", "he", options=("he", "xavier")),
        Knob("n_epochs", "int", "budget", 20, low=1, high=10000),
    )
}

SEARCHABLE: tuple[str, ...] = tuple(KNOBS)
TRAIN_FIELDS: tuple[str, ...] = tuple(n for n, k in KNOBS.items() if k.target == "train")


def knob(name: str) -> Knob:
    """The knob called ``name``; SpaceError listing the searchable names if there is none."""
    if name in KNOBS:
        return KNOBS[name]
    close = difflib.get_close_matches(str(name), SEARCHABLE, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SpaceError(
        f"unknown hyperparameter {name!r}{hint}; searchable names: {', '.join(SEARCHABLE)}"
    )


DECAYS_NEEDING_RATE = ("exponential", "step")


def check_decay_rate(decays: list[tuple[str, Any]], rates: list[tuple[str, Any]]) -> None:
    """The one rule across knobs: ``exponential`` and ``step`` decay multiply the learning rate
    by ``decay_rate`` per period, so it must be in (0, 1] (as ``TrainConfig`` requires).

    ``decays`` and ``rates`` are ``(label, value)`` pairs of the values each knob can take."""
    needing = [value for _, value in decays if value in DECAYS_NEEDING_RATE]
    if not needing:
        return
    for label, rate in rates:
        if not 0 < rate <= 1:
            raise SpaceError(
                f"decay_rate must be in (0, 1] when decay can be {needing[0]!r}, "
                f"got {label}={rate!r}"
            )
