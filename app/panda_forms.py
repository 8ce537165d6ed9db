"""Forms shared by the Panda pages (babysit, model inspector): training knobs, a new session,
and a picker for a study's trial.

Each form only collects and checks what a person typed; the engine validates again and its
message (naming the field and the value) is what a person sees when something is off.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from datetime import datetime

import streamlit as st

from app.common import plain
from engine import babysit
from engine import study as studies
from engine.data.spec import BUILTIN_KINDS, CLASS_COUNT_KINDS
from engine.nn.config import DECAYS, OPTIMIZERS
from engine.nn.size import MAX_BATCH_BYTES, MAX_CHECKPOINT_BYTES, MAX_PARAMS

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid")
LR_RANGE = (-6, 1)  # decades: 1e-6 .. 10


def lr_options(current: float | None = None) -> list[float]:
    """Learning rates on a log grid (ten per decade, two significant digits) plus ``current``
    when it is a usable rate (finite and > 0)."""
    grid = {float(f"{10 ** (k / 10):.2g}") for k in range(10 * LR_RANGE[0], 10 * LR_RANGE[1] + 1)}
    if current is not None and math.isfinite(current) and current > 0:
        grid.add(float(current))
    return sorted(grid)


def lr_choice(current) -> tuple[list[float], float, str]:
    """The learning-rate slider's options, its starting value and a note ("" if none).

    A stored rate that cannot train (0, negative, NaN: left by an old babysitter that drove it
    to 0) starts the slider at the grid's lowest rate with a note, so the form still shows and
    the session can be repaired.
    """
    try:
        value = float(current)
    except (TypeError, ValueError):
        value = math.nan
    options = lr_options(value)
    if value in options:
        return options, value, ""
    return options, options[0], (
        f"The stored learning rate {current!r} cannot train (it must be a number > 0); the "
        f"slider starts at {options[0]:g}: pick a rate and apply."
    )


def parse_hidden(text: str) -> tuple[int, ...]:
    """"64, 64" -> (64, 64); a clear ValueError for anything else."""
    parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise ValueError(
            f"hidden layers must be comma-separated whole numbers >= 1, such as 32, 32; "
            f"got {text!r}"
        )
    if len(parts) > 10 or max(int(p) for p in parts) > 4096:
        raise ValueError(f"hidden layers: at most 10 layers of at most 4096 units; got {text!r}")
    return tuple(int(p) for p in parts)


def _fingerprint(d: dict) -> str:
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


# How the float knobs' boxes print their value (display only: an untouched box returns the
# knob's value with every digit, and only a changed box is sent). Six significant digits, so
# 0.0001 reads 0.0001 and 0.99999 reads 0.99999 (with "%.3f" / "%.4f" they read 0.000 and
# 1.0000), and Adam's beta1 as a search drew it, 0.9962684670368088, reads 0.996268 ("%g" is
# no format to Streamlit's box: it printed all 16 digits and cut them); L2 four, so a drawn
# 7.15437745364513e-05 reads 0.00007154 and fits its box (an L2 is typed as 1e-4 or 2.5e-5).
KNOB_FORMATS = {name: "%.6g" for name in ("momentum", "beta1", "beta2", "dropout",
                                          "bn_momentum", "decay_rate")} | {"l2": "%.4g"}


def knob_widgets(
    config: dict, *, batch_norm: bool, optimizer: str | None, columns: int = 2
) -> dict:
    """Widgets for the training knobs, prefilled from ``config``; returns their values.

    ``optimizer`` None shows every optimizer's knobs (new session); otherwise only its own.
    """
    values = {}
    options, value, note = lr_choice(config["learning_rate"])
    if note:
        st.warning(note, icon=":material/warning:")
    values["learning_rate"] = st.select_slider(
        "Learning rate (log scale)", options=options, value=value, format_func=lambda v: f"{v:g}",
    )
    grid = st.columns(columns)
    cells = iter(grid[i % columns] for i in range(100))
    values["batch_size"] = next(cells).number_input(
        "Batch size", min_value=1, max_value=100_000, value=int(config["batch_size"]), step=1)
    values["l2"] = next(cells).number_input(
        "L2 strength", min_value=0.0, max_value=100.0, value=float(config["l2"]), step=1e-4,
        format=KNOB_FORMATS["l2"])
    betas = (("momentum", "Momentum β", ("momentum",)), ("beta1", "Adam β1", ("adam",)),
             ("beta2", "RMSprop ρ" if optimizer == "rmsprop" else "Adam β2 (RMSprop ρ)"
              if optimizer is None else "Adam β2", ("adam", "rmsprop")))
    for name, label, used_by in betas:
        if optimizer is None or optimizer in used_by:
            values[name] = next(cells).number_input(
                label, min_value=0.0, max_value=max(0.9999, float(config[name])),
                value=float(config[name]), step=0.0001,
                format=KNOB_FORMATS[name])
    values["dropout"] = next(cells).number_input(
        "Dropout (drop probability)", min_value=0.0, max_value=0.95,
        value=float(config["dropout"]), step=0.05, format=KNOB_FORMATS["dropout"])
    if batch_norm:
        values["bn_momentum"] = next(cells).number_input(
            "BN momentum (running averages)", min_value=0.0, max_value=1.0,
            value=float(config["bn_momentum"]), step=0.01, format=KNOB_FORMATS["bn_momentum"])
    values["decay"] = next(cells).selectbox(
        "Learning-rate decay", DECAYS, index=DECAYS.index(config["decay"]),
        help="inverse: lr/(1+k·epoch); exponential: lr·k^epoch; step: lr·k^(epoch // every)")
    values["decay_rate"] = next(cells).number_input(
        "Decay rate k", min_value=0.0, max_value=100.0, value=float(config["decay_rate"]),
        step=0.01, format=KNOB_FORMATS["decay_rate"])
    values["decay_every"] = next(cells).number_input(
        "Step every (epochs)", min_value=1, max_value=100_000, value=int(config["decay_every"]),
        step=1)
    return values


def knobs_form(view: dict) -> dict | None:
    """The training knobs of an open session; on submit, the fields that changed (or None)."""
    config = view["config"]
    with st.form(f"knobs_{view['id']}_{_fingerprint(config)}"):
        st.markdown("**Training knobs** (they apply from the next epoch on)")
        # one knob a row: two a row leave a box 54 px in the side column at 1400 px wide,
        # less than a drawn beta1 needs even at six digits ("0.996268", about 58 px)
        values = knob_widgets(config, batch_norm=view["model"]["batch_norm"],
                              optimizer=config["optimizer"], columns=1)
        submitted = st.form_submit_button("Apply knobs", type="primary")
    if not submitted:
        return None
    changes = {k: v for k, v in values.items() if v != config[k]}
    if not changes:
        st.info("Nothing changed: move a knob first.")
        return None
    return changes


def new_session_form(conn: sqlite3.Connection) -> int | None:
    """Start a session from scratch; returns its id once created."""
    defaults = {"learning_rate": 0.01, "optimizer": "adam", "momentum": 0.9, "beta1": 0.9,
                "beta2": 0.999, "batch_size": 32, "l2": 0.0, "dropout": 0.0,
                "bn_momentum": 0.9, "decay": "none", "decay_rate": 0.0, "decay_every": 10}
    # Enter in a box starts nothing: it started the session before the rest was chosen
    with st.form("new_session", enter_to_submit=False):
        # the default is fixed once per browser session: drawn anew each run, it changed
        # when the minute turned, the box became a new widget and a typed name was lost
        default = st.session_state.setdefault("new_session.default_name",
                                              f"session {datetime.now():%Y-%m-%d %H:%M}")
        name = st.text_input("Name", value=default)
        st.markdown("**Data**")
        c = st.columns(5)
        kind = c[0].selectbox("Dataset", BUILTIN_KINDS, index=BUILTIN_KINDS.index("moons"))
        n_samples = c[1].number_input("Samples", min_value=10, max_value=200_000, value=500)
        noise = c[2].number_input("Noise", min_value=0.0, max_value=10.0, value=0.2, step=0.05)
        n_classes = c[3].number_input("Classes (spirals, blobs, synthetic)", min_value=2,
                                      max_value=100, value=3)
        data_seed = c[4].number_input("Data seed", min_value=0, max_value=2**31 - 1, value=0)
        st.markdown("**Architecture** (fixed for the session)")
        c = st.columns(4)
        hidden = c[0].text_input(
            "Hidden layers (units)", value="16, 16",
            help=f"e.g. 32, 32; at most {MAX_PARAMS:,} parameters, a checkpoint of at most "
                 f"{MAX_CHECKPOINT_BYTES // 2**20} MB and {MAX_BATCH_BYTES // 2**20} MB for a "
                 "mini-batch")
        activation = c[1].selectbox("Activation", ACTIVATIONS)
        batch_norm = c[2].checkbox("Batch norm", value=True)
        seed = c[3].number_input("Weights seed", min_value=0, max_value=2**31 - 1, value=0)
        st.markdown("**Training knobs** (changeable later, except the optimizer)")
        optimizer = st.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index("adam"))
        values = knob_widgets(defaults, batch_norm=True, optimizer=None, columns=3)
        submitted = st.form_submit_button("Start the session", type="primary")
    if not submitted:
        return None
    try:
        layers = parse_hidden(hidden)
    except ValueError as err:
        st.error(str(err), icon="🚫")
        return None
    dataset = {"kind": kind, "seed": int(data_seed)}
    if kind != "digits":
        dataset.update(n_samples=int(n_samples), noise=float(noise))
    if kind in CLASS_COUNT_KINDS:
        dataset["n_classes"] = int(n_classes)
    if not batch_norm:
        values.pop("bn_momentum", None)
    try:
        session_id = babysit.new_session(
            conn, name=name, model={"hidden": list(layers), "activation": activation,
                                    "batch_norm": bool(batch_norm)},
            dataset=dataset, config={**values, "optimizer": optimizer}, seed=int(seed),
        )
        st.session_state.pop("new_session.default_name", None)  # the next one: a new time
        return session_id
    except ValueError as err:
        st.error(f"Could not start the session: {plain(err)}", icon="🚫")
        return None


def trial_picker(conn: sqlite3.Connection, *, key: str, button: str) -> int | None:
    """Pick a study, then one of its trials that has a checkpoint; the trial id on click."""
    every = studies.list_studies(conn)
    if not every:
        st.info("No study yet: design one on the search designer page.")
        return None
    names = {s["id"]: f"#{s['id']} {s['name']} ({s['status']})" for s in every}
    study_id = st.selectbox("Study", list(names), format_func=names.get, key=f"{key}_study")
    trials = [t for t in studies.list_trials(conn, study_id) if t["checkpoint_id"]]
    if not trials:
        st.info("No trial of this study has finished an epoch yet.")
        return None
    trials.sort(key=lambda t: -(t["best_val_acc"] or 0.0))

    def label(t: dict) -> str:
        acc = "" if t["best_val_acc"] is None else f" · best val acc {t['best_val_acc']:.1%}"
        return f"trial {t['number']} · {t['state']} · {t['epochs_done']} epochs{acc}"

    by_id = {t["id"]: t for t in trials}
    trial_id = st.selectbox("Trial (best first)", list(by_id), key=f"{key}_trial",
                            format_func=lambda i: label(by_id[i]))
    if st.button(button, key=f"{key}_go", type="primary"):
        return int(trial_id)
    return None
