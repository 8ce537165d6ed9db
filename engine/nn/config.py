"""TrainConfig: the training knobs a person may change between epochs, validated.

Also the small coercion helpers the frozen specs share, so every validation message has the
same shape: it names the field, the value and what would be valid.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
DECAYS = ("none", "inverse", "exponential", "step")


def as_int(name: str, value: Any, *, minimum: int) -> int:
    """An integer >= minimum; integral floats (e.g. from JSON) are accepted, bools are not."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok and isinstance(value, numbers.Real) and not isinstance(value, bool):
        ok = math.isfinite(float(value)) and float(value).is_integer()
    if not ok:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def as_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite float within [low, high] (either end open on request)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    bad = not math.isfinite(value)
    bad = bad or (low is not None and (value <= low if low_open else value < low))
    bad = bad or (high is not None and (value >= high if high_open else value > high))
    if bad:
        if high is None:
            need = f"> {low:g}" if low_open else f">= {low:g}"
        else:
            need = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return value


def as_choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value


def checked_kwargs(cls: type, d: Any) -> dict:
    """The keyword arguments of dataclass ``cls`` in ``d``; an unknown key is an error."""
    if not isinstance(d, dict):
        raise ValueError(f"{cls.__name__}.from_dict needs a dict, got {type(d).__name__}")
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} key(s) {', '.join(map(repr, unknown))}; "
            f"valid keys are {', '.join(names)}"
        )
    return dict(d)


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters; validated on construction, JSON round trip via dicts."""

    learning_rate: float = 1e-3
    optimizer: str = "adam"  # sgd | momentum | rmsprop | adam
    momentum: float = 0.9  # momentum's beta
    beta1: float = 0.9  # adam
    beta2: float = 0.999  # adam, and rmsprop's decay
    epsilon: float = 1e-8
    batch_size: int = 64
    l2: float = 0.0
    dropout: float = 0.0  # drop probability after each hidden activation
    bn_momentum: float = 0.9
    decay: str = "none"  # none | inverse | exponential | step
    decay_rate: float = 0.0  # inverse: lr/(1+k*epoch); exponential: lr*k**epoch; step: below
    decay_every: int = 10  # step: lr * k ** (epoch // decay_every)

    def __post_init__(self) -> None:
        put = object.__setattr__
        lr = as_float("learning_rate", self.learning_rate, low=0, low_open=True)
        put(self, "learning_rate", lr)
        put(self, "optimizer", as_choice("optimizer", self.optimizer, OPTIMIZERS))
        for name in ("momentum", "beta1", "beta2"):
            put(self, name, as_float(name, getattr(self, name), low=0, high=1, high_open=True))
        put(self, "epsilon", as_float("epsilon", self.epsilon, low=0, low_open=True))
        put(self, "batch_size", as_int("batch_size", self.batch_size, minimum=1))
        put(self, "l2", as_float("l2", self.l2, low=0))
        put(self, "dropout", as_float("dropout", self.dropout, low=0, high=1, high_open=True))
        put(self, "bn_momentum", as_float("bn_momentum", self.bn_momentum, low=0, high=1))
        put(self, "decay", as_choice("decay", self.decay, DECAYS))
        put(self, "decay_every", as_int("decay_every", self.decay_every, minimum=1))
        if self.decay in ("exponential", "step"):
            rate = as_float(
                f"decay_rate (for decay={self.decay!r})", self.decay_rate, low=0, high=1,
                low_open=True,
            )
        else:
            rate = as_float("decay_rate", self.decay_rate, low=0)
        put(self, "decay_rate", rate)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return cls(**checked_kwargs(cls, d))
