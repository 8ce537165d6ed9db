"""From a sampled params dict to engine inputs, and the demo space the designer page starts from.

:func:`trial_config` returns plain dicts (this package does not import ``engine.nn``):
``engine.nn.ModelSpec(**model_kwargs)`` and ``engine.nn.TrainConfig(**train_config)`` build the
engine objects. Knobs missing from ``params`` take their defaults from
:data:`engine.search.knobs.KNOBS`, which mirror ``ModelSpec``'s and ``TrainConfig``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.search.dimensions import Choice, Float, Int
from engine.search.knobs import KNOBS, TRAIN_FIELDS, check_decay_rate, knob
from engine.search.scales import SpaceError
from engine.search.space import Space


def default_space() -> Space:
    """A small demo space: learning rate, Adam's beta1, width, batch norm and L2 searched; the
    rest fixed (Adam, two hidden ReLU layers, batch size 64, 20 epochs)."""
    searched = {
        "learning_rate": Float(1e-4, 1.0, "log"),
        "beta1": Float(0.8, 0.999, "one_minus_log"),
        "hidden_units": Int(8, 128, "log"),
        "batch_norm": Choice((True, False)),
        "l2": Float(1e-6, 1e-1, "log"),
    }
    fixed = {name: k.default for name, k in KNOBS.items() if name not in searched}
    fixed.update(optimizer="adam", hidden_layers=2, activation="relu", batch_size=64, n_epochs=20)
    return Space(searched, fixed)


def _positive_int(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpaceError(f"{field} must be an integer >= {minimum}, got {field}={value!r}")
    return value


def trial_config(
    params: Mapping[str, Any], n_features: int, n_classes: int
) -> tuple[dict, dict, int]:
    """Sampled params -> ``(model_kwargs, train_config, n_epochs)``.

    model_kwargs: ``{"n_inputs", "hidden", "n_classes", "activation", "batch_norm", "init"}``
    with ``hidden = (hidden_units,) * hidden_layers``, the keyword arguments of ``ModelSpec``.
    train_config: every ``TrainConfig`` field (learning_rate, optimizer, momentum, beta1, beta2,
    epsilon, batch_size, l2, dropout, bn_momentum, decay, decay_rate, decay_every).
    n_epochs: the trial's training budget.

    Raises SpaceError for an unknown name, a value outside its knob's domain, or a decay_rate
    outside (0, 1] with exponential or step decay.
    """
    n_features = _positive_int(n_features, "n_features", 1)
    n_classes = _positive_int(n_classes, "n_classes", 2)
    values: dict[str, Any] = {name: k.default for name, k in KNOBS.items()}
    for name, value in params.items():
        knob(name).check_value(value)  # the message starts with the name
        values[name] = value
    check_decay_rate([("value", values["decay"])], [("value", values["decay_rate"])])

    def cast(name: str) -> Any:
        kind = KNOBS[name].kind
        return float(values[name]) if kind == "float" else values[name]

    model_kwargs = {
        "n_inputs": n_features,
        "hidden": (values["hidden_units"],) * values["hidden_layers"],
        "n_classes": n_classes,
        "activation": values["activation"],
        "batch_norm": values["batch_norm"],
        "init": values["init"],
    }
    train_config = {name: cast(name) for name in TRAIN_FIELDS}
    return model_kwargs, train_config, values["n_epochs"]
