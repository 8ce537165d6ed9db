"""Hypothesis strategies: valid dimensions (free or within a knob's domain) and valid spaces."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from engine.search import KNOBS, SEARCHABLE, Choice, Float, Int, Space

exponents = st.floats(-8.0, 3.0, allow_nan=False)


@st.composite
def float_dims(draw, scale: str | None = None) -> Float:
    """Any valid Float on ``scale`` (drawn if None)."""
    scale = scale or draw(st.sampled_from(["linear", "log", "one_minus_log"]))
    if scale == "linear":
        a, b = sorted(draw(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=2)))
    elif scale == "log":
        e1 = draw(exponents)
        e2 = draw(st.floats(e1, e1 + 8.0))
        a, b = 10.0**e1, 10.0**e2
    else:  # 1 - x = 10**-t with t in [0, 9]
        t1 = draw(st.floats(0.0, 9.0))
        t2 = draw(st.floats(t1, 9.0))
        a, b = 1.0 - 10.0**-t1, 1.0 - 10.0**-t2
    return Float(a, max(a, b), scale)


@st.composite
def int_dims(draw, scale: str | None = None) -> Int:
    scale = scale or draw(st.sampled_from(["linear", "log"]))
    low = draw(st.integers(1, 1000) if scale == "log" else st.integers(-1000, 1000))
    return Int(low, low + draw(st.integers(0, 5000)), scale)


option_values = st.one_of(
    st.text(max_size=5), st.integers(-100, 100), st.booleans(), st.floats(-1e3, 1e3)
)


@st.composite
def choice_dims(draw) -> Choice:
    options = draw(
        st.lists(
            option_values,
            min_size=1,
            max_size=6,
            unique_by=lambda o: (
                "number"
                if isinstance(o, int | float) and not isinstance(o, bool)
                else type(o).__name__,
                o,
            ),
        )
    )
    return Choice(options)


any_dims = st.one_of(float_dims(), int_dims(), choice_dims())


@st.composite
def knob_dims(draw, name: str):
    """A dimension whose every value is valid for the knob ``name``."""
    k = KNOBS[name]
    if k.kind == "choice":
        return Choice(draw(st.lists(st.sampled_from(k.options), min_size=1, unique=True)))
    if k.kind == "int":
        lo, hi = int(k.low), int(min(k.high if k.high is not None else 100, k.low + 300))
        a = draw(st.integers(lo, hi))
        if draw(st.booleans()):
            return Choice(draw(st.lists(st.integers(lo, hi), min_size=1, max_size=4, unique=True)))
        return Int(a, draw(st.integers(a, hi)), draw(st.sampled_from(["linear", "log"])))
    lo = 1e-8 if k.low_open else k.low
    hi = 0.999 if k.high_open else (k.high if k.high is not None else 10.0)
    if name == "decay_rate":  # stays valid whatever the decay is
        lo, hi = 1e-3, 1.0
    scales = ["linear", "log"] + (["one_minus_log"] if hi < 1 else [])
    scale = draw(st.sampled_from(scales))
    if scale == "log":
        e_lo, e_hi = math.log10(max(lo, 1e-8)), math.log10(hi)
        e1 = draw(st.floats(e_lo, e_hi))
        a, b = 10.0**e1, 10.0 ** draw(st.floats(e1, e_hi))
    elif scale == "one_minus_log":
        t_lo, t_hi = -math.log10(1 - lo), -math.log10(1 - hi)
        t1 = draw(st.floats(t_lo, t_hi))
        a, b = 1 - 10.0**-t1, 1 - 10.0 ** -draw(st.floats(t1, t_hi))
    else:
        a = draw(st.floats(lo, hi))
        b = draw(st.floats(a, hi))
    a, b = min(max(a, lo), hi), min(max(b, lo), hi)
    return Float(a, max(a, b), scale)


@st.composite
def spaces(draw, max_dims: int = 5) -> Space:
    """A valid space over engine knobs: some searched, maybe the rest fixed at defaults."""
    names = draw(st.lists(st.sampled_from(SEARCHABLE), max_size=max_dims, unique=True))
    params = {name: draw(knob_dims(name)) for name in names}
    fixed = {}
    if draw(st.booleans()):
        fixed = {n: k.default for n, k in KNOBS.items() if n not in params}
    if "decay" in params and "decay_rate" not in params:
        fixed["decay_rate"] = 0.5  # exponential/step decay needs a rate in (0, 1]
    return Space(params, fixed)
