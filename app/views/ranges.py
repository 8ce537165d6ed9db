"""Range filters per parameter: the linked selection of the parallel coordinates.

Plotly's parcoords brushing does not come back to Python through ``st.plotly_chart`` (its
``on_select`` carries points, boxes and lassos only), so each searched parameter gets a
from/to pair (a Choice: the options to keep). The chosen ranges filter the trials of every view
of the study (``selection.selection_bar`` applies them) and are drawn on the parallel-coordinates
axes as Plotly ``constraintrange``s. The ranges are UI state, per study, in
``st.session_state[ranges_key(study_id)]`` as ``{name: {"low", "high"} | {"options": [...]}}``
(the same shape as ``app.charts.search.parallel_coordinates(..., ranges=)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import streamlit as st

from app.common import plain


def ranges_key(study_id: int) -> str:
    return f"selection.ranges.{study_id}"


def in_ranges(trial: Mapping, ranges: Mapping[str, Mapping] | None) -> bool:
    """Whether a trial's params lie in every range (a missing value lies in none)."""
    for name, wanted in (ranges or {}).items():
        value = trial["params"].get(name)
        if "options" in wanted:
            if str(value) not in {str(o) for o in wanted["options"]}:
                return False
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or not (
                wanted["low"] <= value <= wanted["high"]):
            return False
    return True


def describe(ranges: Mapping[str, Mapping] | None) -> str:
    """``"learning_rate 0.001..0.01, optimizer in adam"`` for the selection line."""
    parts = []
    for name, wanted in (ranges or {}).items():
        if "options" in wanted:
            parts.append(f"{name} in {', '.join(map(str, wanted['options']))}")
        else:
            parts.append(f"{name} {wanted['low']:g}..{wanted['high']:g}")
    return "; ".join(parts)


def checked_ranges(space: dict, typed: Mapping[str, tuple]) -> dict:
    """The ranges to keep from what was typed (``{name: (low, high)}`` or ``{name: [options]}``);
    a range that covers the whole dimension is no filter and is left out. ValueError naming the
    parameter, the values and what is valid."""
    out: dict = {}
    for name, value in typed.items():
        dim = space["params"][name]
        if dim.get("type") == "choice":
            options = [o for o in dim["options"] if o in list(value)]
            if not options:
                raise ValueError(f"{name}: keep at least one option of "
                                 f"{', '.join(map(str, dim['options']))}")
            if len(options) < len(dim["options"]):
                out[name] = {"options": options}
            continue
        low, high = (float(v) for v in value)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{name}: from and to must be numbers, got {low} and {high}")
        if low > high:
            raise ValueError(f"{name}: 'from' ({low:g}) is above 'to' ({high:g}); give "
                             "from <= to")
        scale = dim.get("scale", "linear")
        if scale == "log" and low <= 0:
            raise ValueError(f"{name} is on a log scale: 'from' must be above 0, got {low:g}")
        if scale == "one_minus_log" and high >= 1:
            raise ValueError(f"{name} is on a 1 - x log scale: 'to' must be below 1, got "
                             f"{high:g}")
        if low > dim["low"] or high < dim["high"]:
            out[name] = {"low": low, "high": high}
    return out


def _widget(study_id: int, name: str, end: str) -> str:
    return f"ranges.{study_id}.{name}.{end}"


def clear_ranges(study_id: int, dims: Mapping[str, dict]) -> None:
    """Drop the study's ranges and set every from/to box back to its parameter's whole range
    (an ``on_click`` callback: a box whose key were only deleted would go on showing, and
    send back with the next Apply, the range a person typed)."""
    st.session_state[ranges_key(study_id)] = {}
    for name, dim in dims.items():
        if dim.get("type") == "choice":
            st.session_state[_widget(study_id, name, "options")] = list(dim["options"])
            continue
        kind = int if dim.get("type") == "int" else float
        st.session_state[_widget(study_id, name, "low")] = kind(dim["low"])
        st.session_state[_widget(study_id, name, "high")] = kind(dim["high"])


def range_form(study: dict) -> None:
    """From/to per parameter; "Apply" filters every view and draws the ranges on the axes."""
    study_id, dims = study["id"], study["space"].get("params", {})
    if not dims:
        return
    saved = st.session_state.get(ranges_key(study_id)) or {}
    with st.form(f"ranges.{study_id}"):
        st.markdown("**Filter by ranges** (every view of the study; drawn on the axes above)")
        typed: dict = {}
        columns = st.columns(min(2, len(dims)))  # 3 a row cut 0.000001 in its box
        for i, (name, dim) in enumerate(dims.items()):
            box = columns[i % len(columns)].container(border=True)
            if dim.get("type") == "choice":
                typed[name] = box.multiselect(
                    name, dim["options"], default=saved.get(name, {}).get("options",
                                                                          dim["options"]),
                    key=_widget(study_id, name, "options"))
                continue
            low, high = saved.get(name, {}).get("low", dim["low"]), saved.get(name, {}).get(
                "high", dim["high"])
            whole = dim.get("type") == "int"
            kind = int if whole else float
            fmt = None if whole else "%.6g"
            a, b = box.columns(2)
            typed[name] = (
                a.number_input(f"{name} from", value=kind(low), format=fmt,
                               key=_widget(study_id, name, "low")),
                b.number_input("to", value=kind(high), format=fmt,
                               key=_widget(study_id, name, "high")))
        apply = st.form_submit_button("Apply to every view", icon=":material/filter_alt:",
                                      key=f"ranges.apply.{study_id}")
    if saved:
        st.button("Clear the ranges", key=f"ranges.clear.{study_id}",
                  icon=":material/filter_alt_off:", on_click=clear_ranges, args=(study_id, dims))
    if apply:
        try:
            st.session_state[ranges_key(study_id)] = checked_ranges(study["space"], typed)
        except ValueError as err:
            st.error(f"Could not filter by ranges: {plain(str(err))}", icon=":material/error:")
            return
        st.rerun()
