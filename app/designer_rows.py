"""The search designer's hyperparameter rows: widgets in, a dimension (or fixed value) out.

One row per engine knob: *search* it (low, high, scale; options for a choice) or *fix* it (one
value). Text boxes take any number a person types (``1e-4``), and every problem comes back as a
message from the engine's own validation (``Float``, ``Int``, ``Choice``, the knob domains), so
the page can show it beside the row before anything is launched.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from typing import Any

import streamlit as st

from app.labels import SAMPLER_LABELS, SCALE_LABELS, SCHEDULE_LABELS, menu_words
from app.numbers import fmt
from engine import study as studies
from engine.search import KNOBS, Choice, Dimension, Float, Int, SpaceError, default_space

MAX_TRIALS, MAX_WORKERS = studies.MAX_TRIALS, studies.MAX_WORKERS

# The controls under each knob's name: search toggle, low (or the fixed value), high, scale. The
# name has a line of its own: beside them, at 1,024 px, "learning_rate" broke mid-word and the
# boxes cut "0.0001" to "0.000".
COLUMNS = [0.75, 1, 1, 1.3]
GAP = "xsmall"
MAIN_KNOBS = ("learning_rate", "beta1", "beta2", "momentum", "l2", "dropout", "hidden_units",
              "hidden_layers", "batch_size", "optimizer", "activation", "batch_norm")
MORE_KNOBS = ("epsilon", "bn_momentum", "decay", "decay_rate", "decay_every", "init")
RANGES: dict[str, tuple[float, float, str]] = {
    "learning_rate": (1e-4, 1.0, "log"), "beta1": (0.8, 0.999, "one_minus_log"),
    "beta2": (0.99, 0.9999, "one_minus_log"), "momentum": (0.5, 0.99, "one_minus_log"),
    "l2": (1e-6, 1e-1, "log"), "dropout": (0.0, 0.5, "linear"),
    "bn_momentum": (0.5, 0.99, "one_minus_log"), "epsilon": (1e-10, 1e-6, "log"),
    "decay_rate": (1e-3, 1e-1, "log"), "hidden_units": (8, 128, "log"),
    "hidden_layers": (1, 3, "linear"), "batch_size": (16, 256, "log"),
    "decay_every": (5, 20, "linear"),
}
DECADES_WARNING = 2.0
# The limits of the designer's number boxes: the engine's own where it has one.
MAX_EPOCHS = KNOBS["n_epochs"].high  # 10,000 epochs a trial
MAX_ROUNDS = 1_000
MAX_ETA = 10
MAX_SEED = 2**32 - 1
MAX_EPOCH_BUDGET = MAX_TRIALS * 10_000
SCHEDULES = SCHEDULE_LABELS  # the menus' names: app/labels.py
BACKENDS = {"local": "This machine", "dask": "A Dask cluster"}


@dataclass
class Row:
    """What one row produced: a searched dimension, or a fixed value, or an error message."""

    name: str
    dimension: Dimension | None = None
    fixed: Any = None
    error: str = ""
    warning: str = ""

    @property
    def searched(self) -> bool:
        return self.dimension is not None


WIDGET_DEFAULTS = "_draft.defaults"  # session key: {widget key: the default it is drawn with}


def keyed(key: str, default: Any) -> str:
    """A designer widget's ``key``, with the ``default`` it is drawn with remembered (Start
    over, ``app.drafts.forget_draft``, sets the widget back to it)."""
    st.session_state.setdefault(WIDGET_DEFAULTS, {})[key] = default
    return key


def defaults() -> tuple[set[str], dict[str, Any]]:
    """The names searched by default and the default fixed value of every knob."""
    space = default_space()
    fixed = {name: knob.default for name, knob in KNOBS.items()}
    fixed.update(space.fixed)
    return set(space.params), fixed


def knob_label(name: str) -> str:
    """A knob's name in bold, allowed to break only after an underscore (a zero-width space
    there), never inside a word."""
    return f"**{name.replace('_', '_' + chr(0x200B))}**"


def parse_number(text: str, field: str, integer: bool) -> float | int:
    """Parse a typed number; SpaceError naming the field if it is not one."""
    try:
        value = float(str(text).strip().replace(",", "."))
    except ValueError:
        raise SpaceError(f"{field}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SpaceError(f"{field}: must be a finite number, got {text!r}")
    if integer:
        if value != round(value):
            raise SpaceError(f"{field}: must be a whole number, got {text!r}")
        return int(round(value))
    return value


def linear_range_warning(name: str, low: float, high: float, scale: str) -> str:
    """A hint when a linear range spans more than two decades (most samples would land in the
    top decade, and the small values would hardly be tried)."""
    if scale != "linear" or low <= 0 or high <= low:
        return ""
    decades = math.log10(high / low)
    if decades <= DECADES_WARNING:
        return ""
    top = 100 * (high - high / 10) / (high - low)  # share of [low, high] in the top decade
    return (f"{name}: {fmt(low)}..{fmt(high)} spans {decades:.1f} decades on a linear scale, so "
            f"about {top:.0f}% of the samples land in the top decade. Use the log scale.")


def build_dimension(name: str, low_text: str, high_text: str, scale: str) -> Dimension:
    """The engine dimension for typed bounds; SpaceError (from the engine) if invalid."""
    knob = KNOBS[name]
    integer = knob.kind == "int"
    low = parse_number(low_text, f"{name} low", integer)
    high = parse_number(high_text, f"{name} high", integer)
    try:
        dim = (Int if integer else Float)(low, high, scale)
        knob.check_dimension(dim)
    except SpaceError as err:
        message = str(err)
        raise SpaceError(message if message.startswith(name) else f"{name}: {message}") from err
    return dim


def render_header() -> None:
    """Column titles above the rows' controls (the rows' own labels are collapsed)."""
    for column, title in zip(st.columns(COLUMNS, gap=GAP),
                             ("search", "low, or the value", "high", "scale")):
        column.caption(title)


def render_row(name: str, searched_default: bool, fixed_default: Any) -> Row:
    """Draw one row (name, search toggle, bounds and scale, or a fixed value) and parse it."""
    knob = KNOBS[name]
    key = f"hp.{name}"
    st.markdown(knob_label(name), help=f"{name} must be {knob.domain()}")
    if knob.kind == "choice":  # one wide cell for the options instead of low/high/scale
        c_mode, c_low = st.columns([COLUMNS[0], sum(COLUMNS[1:])], gap=GAP,
                                   vertical_alignment="center")
    else:
        c_mode, c_low, c_high, c_scale = st.columns(COLUMNS, gap=GAP, vertical_alignment="center")
    search = c_mode.toggle("search", value=searched_default,
                           key=keyed(f"{key}.search", searched_default),
                           label_visibility="collapsed", persist_state="session")
    row = Row(name)
    try:
        if knob.kind == "choice":
            options = list(knob.options)
            if search:
                chosen = c_low.multiselect("options", options, default=options,
                                           key=keyed(f"{key}.options", options),
                                           label_visibility="collapsed", format_func=str,
                                           persist_state="session")
                if not chosen:
                    raise SpaceError(f"{name}: pick at least one option, or turn search off to "
                                     "fix one value")
                row.dimension = Choice(tuple(chosen))
            else:
                row.fixed = c_low.selectbox("value", options,
                                            index=options.index(fixed_default),
                                            key=keyed(f"{key}.value", fixed_default),
                                            format_func=str,
                                            label_visibility="collapsed",
                                            persist_state="session")
            return row
        low, high, scale = RANGES.get(name, (fixed_default, fixed_default, "linear"))
        if search:
            scales = ["linear", "log"] if knob.kind == "int" else list(SCALE_LABELS)
            low_text = c_low.text_input("low", fmt(low), key=keyed(f"{key}.low", fmt(low)),
                                        label_visibility="collapsed", persist_state="session")
            high_text = c_high.text_input("high", fmt(high), key=keyed(f"{key}.high", fmt(high)),
                                          label_visibility="collapsed", persist_state="session")
            scale = c_scale.selectbox("scale", scales, index=scales.index(scale),
                                      format_func=SCALE_LABELS.get,
                                      key=keyed(f"{key}.scale", scale),
                                      label_visibility="collapsed", persist_state="session")
            row.dimension = build_dimension(name, low_text, high_text, scale)
            row.warning = linear_range_warning(name, row.dimension.low, row.dimension.high,
                                               scale)
        else:
            text = c_low.text_input("value", fmt(fixed_default),
                                    key=keyed(f"{key}.value", fmt(fixed_default)),
                                    label_visibility="collapsed", persist_state="session")
            value = parse_number(text, name, knob.kind == "int")
            value = float(value) if knob.kind == "float" else value
            knob.check_value(value)
            row.fixed = value
    except SpaceError as err:
        row.dimension = None
        message = menu_words(err)  # every row's message starts with the knob it is about
        row.error = message if message.startswith(name) else f"{name}: {message}"
    return row


def bounded(value: int, label: str, low: int, high: int, problems: list[str]) -> int:
    """A whole number typed in a box without limits of its own (a box with ``min_value`` /
    ``max_value`` only outlines a refused number in red and silently keeps the last valid one,
    so Launch would use a value the page no longer shows): out of ``low..high`` becomes an
    error beside the box and a problem that names the box, its limit and the value."""
    value = int(value)
    message = ""
    if value < low:
        message = f"{label} must be at least {low:,}, got {value:,}"
    elif value > high:
        message = f"{label} must be at most {high:,}, got {value:,}"
    if message:
        st.error(message, icon=":material/error:")
        problems.append(message)
    return value


def count_box(column, label: str, default: int, low: int, high: int, key: str,
              problems: list[str], *, field: str = "", **kwargs) -> int:
    """A number box for a whole number in ``low..high``, checked by :func:`bounded` (its
    messages name ``field``, default the label)."""
    value = column.number_input(label, value=default, step=kwargs.pop("step", 1),
                                key=keyed(key, default),
                                persist_state="session", **kwargs)
    with column:
        return bounded(value, field or label, low, high, problems)


def at_least_one(value: int, label: str, problems: list[str]) -> int:
    """A count that must be at least 1 (no upper limit of its own)."""
    return bounded(value, label, 1, 2**63 - 1, problems)


def dask_unreachable(address: str, timeout: float = 2.0) -> str:
    """"" when something accepts TCP connections at a Dask scheduler address (``tcp://host:port``),
    else a sentence saying what is wrong. Checked before a study is created, so a typo does not
    become a study that fails ten seconds later."""
    scheme, _, target = address.rpartition("://")
    if scheme not in ("", "tcp", "tls"):
        return ""  # another transport (ucx, inproc): let Dask judge it
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return (f"the Dask scheduler address must look like tcp://127.0.0.1:8786, "
                f"got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return ""
    except OSError as err:
        reason = err.strerror or type(err).__name__
        return (f"nothing answers at {address} ({reason}): start the scheduler there "
                f"(dask scheduler --port {port}) and its workers, or run on this machine")


def pbt_schedule(columns: list, problems: list[str]) -> dict | None:
    """Population-based training's settings in three of the budget columns; None while a box
    holds 0 (a problem already named)."""
    before = len(problems)
    interval = count_box(columns[1], "Epochs per round", 4, 1, MAX_EPOCHS,
                         "designer.pbt_interval", problems)
    rounds = count_box(columns[2], "Rounds", 5, 1, MAX_ROUNDS, "designer.pbt_rounds", problems)
    share = columns[3].slider("Replace the bottom %", 5, 50, 25,
                              key=keyed("designer.pbt_quantile", 25),
                              persist_state="session")
    if len(problems) > before:
        return None
    st.caption(f"Each trial trains {interval * rounds} epochs in {rounds} rounds of {interval}. "
               f"After every round but the last, the bottom {share}% of the population copy the "
               f"weights of a trial from the top {share}% and move its training knobs (x0.8 or "
               "x1.2 on their own scale, or a fresh sample one time in four).")
    return {"kind": "pbt", "interval": interval, "n_rounds": rounds, "quantile": share / 100}


def pbt_note(space, scheduler: dict | None) -> None:
    """Under PBT, name the searched knobs that only round 0 samples (the weights fix them)."""
    from engine.search import pbt

    if space is None or not scheduler or scheduler["kind"] != "pbt":
        return
    frozen = pbt.frozen_dims(space)
    if frozen:
        st.info(f"Population-based training moves training knobs only: {', '.join(frozen)} "
                "will be sampled once per trial, then copied with the weights whenever a trial "
                "takes over a better one.", icon=":material/info:")


def budget_section(problems: list[str]) -> tuple[dict, int, str]:
    """Schedule, epochs and where to run: (scheduler dict, workers, Dask address or ""); the
    scheduler is None while an epochs box holds 0 (a problem already named)."""
    st.subheader("Budget and resources")
    budget = st.columns(4)
    schedule = budget[0].radio("Schedule", list(SCHEDULES),
                               key=keyed("designer.schedule", next(iter(SCHEDULES))),
                               format_func=SCHEDULES.get, persist_state="session")
    epochs, epochs_ok = 1, True
    if schedule != "pbt":
        before = len(problems)
        epochs = count_box(budget[1], "Epochs per trial (max)", 20, 1, MAX_EPOCHS,
                           "designer.epochs", problems, field="Epochs per trial")
        epochs_ok = len(problems) == before
    if schedule == "pbt":
        scheduler = pbt_schedule(budget, problems)
    elif schedule == "full_budget":
        scheduler = {"kind": "full_budget", "n_epochs": epochs}
    else:
        before = len(problems)
        first = count_box(budget[2], "First rung (epochs)", 2, 1, MAX_EPOCHS,
                          "designer.min_epochs", problems)
        eta = count_box(budget[3], "Keep 1 in", 3, 2, MAX_ETA, "designer.eta", problems)
        scheduler = {"kind": "successive_halving", "max_epochs": epochs,
                     "min_epochs": first, "eta": eta}
        epochs_ok = epochs_ok and len(problems) == before
    where = st.columns(4)
    backend = where[0].radio("Run on", list(BACKENDS),
                             key=keyed("designer.backend", next(iter(BACKENDS))),
                             format_func=BACKENDS.get, persist_state="session")
    workers = count_box(where[1], "Workers", min(2, os.cpu_count() or 1), 1, MAX_WORKERS,
                        "designer.workers", problems)
    address = ""
    if backend == "dask":
        address = where[2].text_input("Dask scheduler address",
                                      key=keyed("designer.address", ""),
                                      placeholder="tcp://127.0.0.1:8786", persist_state="session")
        if not address.strip():
            problems.append("give the Dask scheduler's address, e.g. tcp://127.0.0.1:8786")
    return (scheduler if epochs_ok else None), workers, address.strip()


OBJECTIVES = {"val_acc": "maximise validation accuracy", "val_loss": "minimise validation loss",
              "val_error": "minimise validation error"}


def goal_section(problems: list[str]) -> tuple[dict, int | None]:
    """What the search optimises and an optional cap on epochs in all: (objective dict,
    epoch_budget or None). Samplers, schedulers and zooms all read the objective."""
    goal = st.columns(4)
    metric = goal[0].selectbox("Optimise", list(OBJECTIVES), format_func=OBJECTIVES.get,
                               key=keyed("designer.objective", next(iter(OBJECTIVES))),
                               persist_state="session")
    cap = count_box(
        goal[1], "Epochs in all (0 = no cap)", 0, 0, MAX_EPOCH_BUDGET, "designer.epoch_budget",
        problems, field="Epochs in all", step=100,
        help="Stop asking for new trials once the trials' epochs, trained or reserved, reach "
             "this number; trials already running finish.")
    return {"metric": metric}, (cap if 0 < cap <= MAX_EPOCH_BUDGET else None)


# ---- the draft: which saved values the designer takes back after a refresh -------------------
CHOICE_FIELDS = {
    "designer.sampler": tuple(SAMPLER_LABELS), "designer.qmc": ("sobol", "lhs"),
    "designer.schedule": tuple(SCHEDULES), "designer.backend": tuple(BACKENDS),
    "designer.objective": tuple(OBJECTIVES),
}
SLIDER_FIELDS = {"designer.top": (1, 100), "designer.shrink": (0.05, 1.0),
                 "designer.pbt_quantile": (5, 50)}
COUNT_FIELDS = ("designer.seed", "designer.n_trials", "designer.points", "designer.epochs",
                "designer.pbt_interval", "designer.pbt_rounds", "designer.min_epochs",
                "designer.eta", "designer.workers", "designer.epoch_budget")
TEXT_FIELDS = ("designer.name", "designer.address")
MAX_TEXT = 1_000


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def draft_field_ok(key: str, value: Any) -> bool:
    """Whether a value saved in the designer's draft may go back into its widget: the right
    type, an option the widget offers, a slider value in its range. (Counts go back whatever
    their size: the page names one out of range.)"""
    if key in CHOICE_FIELDS:
        return isinstance(value, str) and value in CHOICE_FIELDS[key]
    if key in SLIDER_FIELDS:
        low, high = SLIDER_FIELDS[key]
        return _number(value) and low <= value <= high and isinstance(value, type(low))
    if key in COUNT_FIELDS:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53
    if key in TEXT_FIELDS:
        return isinstance(value, str) and len(value) <= MAX_TEXT
    name, _, field = key.removeprefix("hp.").rpartition(".")
    knob = KNOBS.get(name) if key.startswith("hp.") else None
    if knob is None:
        return False
    if field == "search":
        return isinstance(value, bool)
    if knob.kind == "choice":
        fits = [o for o in knob.options]
        if field == "options":
            return isinstance(value, list) and all(
                any(type(v) is type(o) and v == o for o in fits) for v in value)
        return field == "value" and any(type(value) is type(o) and value == o for o in fits)
    if field in ("low", "high", "value"):
        return isinstance(value, str) and len(value) <= 100
    if field == "scale":
        return value in (("linear", "log") if knob.kind == "int" else tuple(SCALE_LABELS))
    return False
