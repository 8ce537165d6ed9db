"""The 2-D toy sets: moons, circles, spirals, blobs, xor.

Every generator takes `(n_samples, noise, rng)` (and `n_classes` where it has a choice) and returns
`X (n_samples, 2) float64, y (n_samples,) int64`. Classes are balanced: their sizes differ by at
most one. `noise` is always the standard deviation of Gaussian noise added to both coordinates,
on sets whose clean points lie within about [-1, 1] (moons: [-1, 2] x [-0.5, 1]), so the same
noise means about the same blur on every set. Rows come shuffled.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

XY = tuple[np.ndarray, np.ndarray]  # X (N, 2) float64, y (N,) int64


def class_sizes(n_samples: int, n_classes: int) -> np.ndarray:
    """Balanced class sizes (n_classes,) int64 summing to n_samples; the first get the extra."""
    sizes = np.full(n_classes, n_samples // n_classes, dtype=np.int64)
    sizes[: n_samples % n_classes] += 1
    return sizes


def _finish(parts: list[np.ndarray], noise: float, rng: np.random.Generator) -> XY:
    """Stack per-class clean points, add noise, shuffle. parts[k] is (n_k, 2) for class k."""
    X = np.concatenate(parts).astype(np.float64)  # (N, 2)
    y = np.concatenate([np.full(len(p), k, dtype=np.int64) for k, p in enumerate(parts)])
    if noise > 0:
        X += rng.normal(0.0, noise, size=X.shape)
    order = rng.permutation(len(y))
    return X[order], y[order]


def make_moons(n_samples: int, noise: float, rng: np.random.Generator) -> XY:
    """Two interleaving half circles: class 0 the upper one, class 1 the lower one."""
    n0, n1 = class_sizes(n_samples, 2)
    t0 = np.linspace(0.0, np.pi, n0)
    t1 = np.linspace(0.0, np.pi, n1)
    upper = np.column_stack([np.cos(t0), np.sin(t0)])
    lower = np.column_stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)])
    return _finish([upper, lower], noise, rng)


def make_circles(n_samples: int, noise: float, rng: np.random.Generator) -> XY:
    """Two concentric circles: class 0 radius 1, class 1 radius 0.5."""
    parts = []
    for n, radius in zip(class_sizes(n_samples, 2), (1.0, 0.5)):
        t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
        parts.append(radius * np.column_stack([np.cos(t), np.sin(t)]))
    return _finish(parts, noise, rng)


def make_spirals(n_samples: int, noise: float, rng: np.random.Generator, n_classes: int = 3) -> XY:
    """n_classes spiral arms from the origin out to radius 1, each turning 4 radians.

    Arm k starts at angle 2*pi*k/n_classes (the CS231n spiral, with noise on the points).
    """
    parts = []
    for k, n in enumerate(class_sizes(n_samples, n_classes)):
        r = np.linspace(0.0, 1.0, n)
        t = 2 * np.pi * k / n_classes + 4.0 * r
        parts.append(np.column_stack([r * np.cos(t), r * np.sin(t)]))
    return _finish(parts, noise, rng)


def make_blobs(n_samples: int, noise: float, rng: np.random.Generator, n_classes: int = 3) -> XY:
    """n_classes Gaussian blobs of standard deviation `noise`, centred evenly on the unit circle.

    The circle is turned by a seeded random angle so that different seeds give different sets.
    """
    phase = rng.uniform(0.0, 2 * np.pi)
    parts = []
    for k, n in enumerate(class_sizes(n_samples, n_classes)):
        angle = phase + 2 * np.pi * k / n_classes
        parts.append(np.tile([np.cos(angle), np.sin(angle)], (n, 1)))
    return _finish(parts, noise, rng)


def make_xor(n_samples: int, noise: float, rng: np.random.Generator) -> XY:
    """Uniform points in the four quadrants of [-1, 1]^2; class 1 where x1 * x2 < 0.

    Noise is added after labelling, so it blurs the boundary along the axes.
    """
    parts = []
    for k, n in enumerate(class_sizes(n_samples, 2)):
        pts = rng.uniform(0.0, 1.0, size=(n, 2))  # (n, 2) magnitudes
        signs = rng.choice([-1.0, 1.0], size=n)  # class 0: same sign; class 1: opposite signs
        pts[:, 0] *= signs
        pts[:, 1] *= signs if k == 0 else -signs
        parts.append(pts)
    return _finish(parts, noise, rng)


ToyMaker = Callable[..., XY]

TOY_MAKERS: dict[str, ToyMaker] = {
    "moons": make_moons,
    "circles": make_circles,
    "spirals": make_spirals,
    "blobs": make_blobs,
    "xor": make_xor,
}
MULTICLASS_TOYS = ("spirals", "blobs")  # the toy sets that take n_classes


def make_toy(
    kind: str, n_samples: int, noise: float, n_classes: int, rng: np.random.Generator
) -> XY:
    """Dispatch by kind; n_classes is used by spirals and blobs only (the others have 2)."""
    if kind not in TOY_MAKERS:
        raise ValueError(f"kind must be one of {', '.join(TOY_MAKERS)}; got kind={kind!r}")
    if kind in MULTICLASS_TOYS:
        return TOY_MAKERS[kind](n_samples, noise, rng, n_classes=n_classes)
    return TOY_MAKERS[kind](n_samples, noise, rng)
