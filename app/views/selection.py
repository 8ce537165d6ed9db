"""Linked selection across the views of a study: trials picked with a box or a lasso on a
scatter (or a single point, "try here"), and a top-k% filter, narrow every view (curves,
table, points, parallel coordinates, ...). The choice is UI state, per study, in
``st.session_state``; the page calls ``selection_bar`` once and draws the views with what it
returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import streamlit as st

from app.charts.search import TRY_MARK
from app.views.actions import TRY_KEY
from app.views.ranges import clear_ranges, describe, in_ranges, ranges_key


def _key(study_id: int) -> str:
    return f"selection.{study_id}"


def picked(event) -> list[int]:
    """Trial numbers of the points selected on a scatter (``customdata[0]``)."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    out = set()
    for point in points:
        custom = point.get("customdata")
        if isinstance(custom, list | tuple) and custom and isinstance(custom[0], int | float):
            out.add(int(custom[0]))
        elif isinstance(custom, int | float):
            out.add(int(custom))
    return sorted(out)


def try_params(event, trials: Sequence[dict], names: Sequence[str] = ()) -> dict | None:
    """The add form's starting values for a click ("try here"), or None: one trial's point
    gives its params; one cell of the invisible grid of a pair chart (``customdata = ["try",
    x value, y value]``, ``names`` = the chart's (x, y) parameters) gives the best trial's
    params with x and y set to the cell's values."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    if len(points) != 1:
        return None
    custom = points[0].get("customdata")
    if isinstance(custom, list | tuple) and len(custom) == 3 and custom[0] == TRY_MARK:
        if len(names) != 2:
            return None
        have = [t for t in trials if t.get("best_val_acc") is not None]
        best = max(have, key=lambda t: t["best_val_acc"], default=None)
        return {**(best["params"] if best else {}), names[0]: custom[1], names[1]: custom[2]}
    numbers = picked(event)
    by_number = {t["number"]: t for t in trials}
    if len(numbers) == 1 and numbers[0] in by_number:
        return dict(by_number[numbers[0]]["params"])
    return None


def remember(study_id: int, chart_key: str, trials: Sequence[dict], names: Sequence[str] = ()):
    """An ``on_select`` callback for the chart ``chart_key``: its selection becomes the study's;
    a single point, or an empty spot of a pair chart (its (x, y) parameters ``names``), also
    becomes the add form's starting values ("try here")."""
    def callback() -> None:
        event = st.session_state.get(chart_key)
        numbers = picked(event)
        tried = try_params(event, trials, names)
        if numbers or tried is None:  # a click on an empty spot keeps the selection
            st.session_state[_key(study_id)] = numbers or None
        if tried is not None:
            st.session_state[TRY_KEY] = tried
    return callback


def filter_trials(trials: Sequence[dict], numbers: Sequence[int] | None,
                  top_percent: int, score: str = "best_val_acc",
                  maximize: bool = True, ranges: Mapping[str, Mapping] | None = None
                  ) -> list[dict]:
    """The trials in ``numbers`` (None: all) whose params lie in ``ranges``
    (``app.views.ranges``), then the best ``top_percent`` % by ``score`` (100: no cut; trials
    without a score are cut by any top-k%)."""
    chosen = None if numbers is None else set(numbers)
    out = [t for t in trials if (chosen is None or t["number"] in chosen)
           and in_ranges(t, ranges)]
    if top_percent >= 100:
        return out
    have = sorted((t for t in out if t.get(score) is not None),
                  key=lambda t: -t[score] if maximize else t[score])
    keep = {t["number"] for t in have[:max(1, round(len(have) * top_percent / 100))]}
    return [t for t in out if t["number"] in keep]


def filter_metrics(metrics: Mapping[str, list], numbers: set[int] | None) -> dict[str, list]:
    """``study_metrics`` columns restricted to the trials ``numbers`` (None: all)."""
    if numbers is None:
        return dict(metrics)
    rows = [i for i, n in enumerate(metrics["number"]) if n in numbers]
    return {name: [col[i] for i in rows] for name, col in metrics.items()}


def selection_bar(study: dict, trials: list[dict]) -> list[dict]:
    """The selection line above the views; the trials every view should draw."""
    numbers = st.session_state.get(_key(study["id"]))
    ranges = st.session_state.get(ranges_key(study["id"])) or {}
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    top = c2.number_input("Top %", 1, 100, 100, step=5, key=f"selection.top.{study['id']}",
                          help="Only the best k% of the trials (by best validation accuracy)")
    shown = filter_trials(trials, numbers, int(top), ranges=ranges)
    if numbers is None and top >= 100 and not ranges:
        c1.caption("All trials shown. Drag a box or a lasso over the points of a scatter to "
                   "show only those trials in every view; click one point to try near it.")
    else:
        c1.info(f"Showing {len(shown)} of {len(trials)} trials"
                + (f" (selected: {', '.join(map(str, numbers[:12]))}"
                   f"{'…' if len(numbers) > 12 else ''})" if numbers else "")
                + (f", within {describe(ranges)}" if ranges else "")
                + (f", the best {top}%" if top < 100 else ""), icon=":material/filter_alt:")
    if numbers is not None or ranges:
        c3.button("Show all", key=f"selection.clear.{study['id']}", on_click=show_all,
                  args=(study,))
    return shown


def show_all(study: dict) -> None:
    """Drop the selection and the ranges (an ``on_click`` callback: see ``clear_ranges``)."""
    st.session_state[_key(study["id"])] = None
    clear_ranges(study["id"], study["space"].get("params", {}))


def narrow_metrics(study: dict, trials: Sequence[dict], metrics: Mapping[str, list]) -> dict:
    """``study_metrics`` columns of the trials a view was given (all of them: unchanged)."""
    if len(trials) >= sum(study["counts"].values()):
        return dict(metrics)
    return filter_metrics(metrics, {t["number"] for t in trials})
