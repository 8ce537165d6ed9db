"""Weight initialisation from a passed ``numpy.random.Generator``.

Draws are made in float64 and then cast, so a float32 and a float64 model built from the same
seed start from the same (rounded) weights.
"""

from __future__ import annotations

import numpy as np

INITS = ("he", "xavier")


def he_init(
    fan_in: int, fan_out: int, rng: np.random.Generator, dtype: str = "float32"
) -> np.ndarray:
    """(fan_in, fan_out) weights ~ N(0, 2 / fan_in): keeps ReLU activations' variance."""
    std = np.sqrt(2.0 / fan_in)
    return (rng.standard_normal((fan_in, fan_out)) * std).astype(dtype)


def xavier_init(
    fan_in: int, fan_out: int, rng: np.random.Generator, dtype: str = "float32"
) -> np.ndarray:
    """(fan_in, fan_out) weights ~ N(0, 2 / (fan_in + fan_out)) (Glorot): for tanh/sigmoid."""
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return (rng.standard_normal((fan_in, fan_out)) * std).astype(dtype)


def init_weights(
    scheme: str, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: str = "float32"
) -> np.ndarray:
    if scheme == "he":
        return he_init(fan_in, fan_out, rng, dtype)
    if scheme == "xavier":
        return xavier_init(fan_in, fan_out, rng, dtype)
    raise ValueError(f"init must be one of {', '.join(INITS)}; got {scheme!r}")
