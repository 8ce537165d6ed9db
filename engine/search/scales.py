"""Scales: the one place that knows how a value maps to the unit interval and to a chart axis.

A scale is a monotone increasing *warp* ``t = warp(x)``; a dimension with bounds ``[low, high]``
maps a value to the unit interval by ``u = (warp(x) - warp(low)) / (warp(high) - warp(low))`` and
back with the inverse warp. Samplers only ever see ``u``, so they never branch on scale.

=================  ========================  =================================================
scale              warp ``t(x)``             meaning
=================  ========================  =================================================
``linear``         ``x``                     uniform in value
``log``            ``log10(x)``              log-uniform: 1e-4..1 means ``10**uniform(-4, 0)``
``one_minus_log``  ``-log10(1 - x)``         ``1 - x`` log-uniform, for betas: 0.9..0.999 is
                                             ``1 - 10**uniform(-3, -1)``, so half the samples
                                             fall above 0.99
=================  ========================  =================================================

Charts: :func:`axis_for_scale` returns an :class:`AxisInfo` saying how to draw a dimension.
``linear`` -> a linear axis of the value; ``log`` -> a log axis of the value; ``one_minus_log`` ->
a log axis of ``1 - value`` (``transform="one_minus"``, titled ``"1 - beta1"``), reversed so
that larger betas still sit to the right. A ``Choice`` gets a ``"category"`` axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCALES: tuple[str, ...] = ("linear", "log", "one_minus_log")


class SpaceError(ValueError):
    """An invalid search space, dimension, sampler or value; the message names what and why."""


def check_scale(scale: object) -> str:
    """Return ``scale`` if it is a known scale, else raise :class:`SpaceError` listing them."""
    if not isinstance(scale, str) or scale not in SCALES:
        raise SpaceError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
    return scale


def warp(x: np.ndarray | float, scale: str) -> np.ndarray:
    """Map values to the scale's coordinate ``t``, elementwise; monotone increasing."""
    x = np.asarray(x, dtype=np.float64)
    if scale == "linear":
        return x
    if scale == "log":
        return np.log10(x)
    if scale == "one_minus_log":
        return -np.log10(1.0 - x)
    raise SpaceError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")


def unwarp(t: np.ndarray | float, scale: str) -> np.ndarray:
    """Inverse of :func:`warp`, elementwise."""
    t = np.asarray(t, dtype=np.float64)
    if scale == "linear":
        return t
    if scale == "log":
        return 10.0**t
    if scale == "one_minus_log":
        return 1.0 - 10.0 ** (-t)
    raise SpaceError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")


def to_unit(x: np.ndarray | float, low: float, high: float, scale: str) -> np.ndarray:
    """Values in ``[low, high]`` -> unit coordinates in ``[0, 1]`` (clipped); all 0 if
    ``low == high``."""
    t_low, t_high = float(warp(low, scale)), float(warp(high, scale))
    span = t_high - t_low
    if span == 0.0:
        return np.zeros_like(np.asarray(x, dtype=np.float64))
    return np.clip((warp(x, scale) - t_low) / span, 0.0, 1.0)


def from_unit(u: np.ndarray | float, low: float, high: float, scale: str) -> np.ndarray:
    """Unit coordinates (clipped to ``[0, 1]``) -> values in ``[low, high]`` (clipped)."""
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    t_low, t_high = float(warp(low, scale)), float(warp(high, scale))
    return np.clip(unwarp(t_low + u * (t_high - t_low), scale), low, high)


@dataclass(frozen=True)
class AxisInfo:
    """How a chart draws one dimension.

    axis_type: ``"linear"``, ``"log"`` or ``"category"`` (a Plotly axis ``type``).
    transform: ``"identity"`` (plot the value) or ``"one_minus"`` (plot ``1 - value``).
    reversed: draw the axis reversed (``one_minus``: so larger values still sit to the right).
    categories: the options of a ``Choice``, in order, as strings; empty otherwise.
    """

    axis_type: str
    transform: str = "identity"
    reversed: bool = False
    categories: tuple[str, ...] = ()

    def apply(self, values: np.ndarray | list) -> np.ndarray:
        """The numbers to plot for ``values`` (numeric axes only), shape preserved."""
        arr = np.asarray(values, dtype=np.float64)
        return 1.0 - arr if self.transform == "one_minus" else arr

    def title(self, name: str) -> str:
        """Axis title for the dimension ``name``, e.g. ``"1 - beta2"``."""
        return f"1 - {name}" if self.transform == "one_minus" else name

    def to_dict(self) -> dict:
        return {
            "axis_type": self.axis_type,
            "transform": self.transform,
            "reversed": self.reversed,
            "categories": list(self.categories),
        }


def axis_for_scale(scale: str) -> AxisInfo:
    """The chart axis for a numeric dimension on ``scale``."""
    if scale == "linear":
        return AxisInfo("linear")
    if scale == "log":
        return AxisInfo("log")
    if scale == "one_minus_log":
        return AxisInfo("log", transform="one_minus", reversed=True)
    raise SpaceError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
