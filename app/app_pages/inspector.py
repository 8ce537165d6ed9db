"""Model inspector: look inside a trained model (batch norm, softmax), and an experiment.

The model is a babysitting session's checkpoint (``?session=ID``, optionally ``&node=ID``) or a
study trial's latest checkpoint (``?trial=ID``). The numbers come from ``engine.introspect``; this
page only picks, draws and explains. The batch-norm experiment trains two sessions through
their detached runners (``?bn_exp=A,B`` keeps it on screen across refreshes).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.charts.inspector import (
    bn_histograms_figure,
    bn_stats_figure,
    confusion_figure,
    experiment_figure,
    mode_accuracy_figure,
    probabilities_figure,
)
from app.common import (
    db_path,
    friendly_errors,
    get_conn,
    plain,
    query_int,
    query_ints,
    set_query,
)
from app.live import live_part
from app.panda_forms import lr_options, parse_hidden, trial_picker
from app.views.teaching import teaching_tab
from engine import babysit
from engine import introspect as insp
from engine import study as studies
from engine.data.views import display_name

MAX_SAMPLES = 6
PAGE = "app_pages/inspector.py"
EXPERIMENT_DATA = ("moons", "circles", "spirals", "blobs", "xor", "digits")


def reopen(**params) -> None:
    """Show this page again with these query params, in the browser's URL too."""
    st.switch_page(PAGE, query_params={k: str(v) for k, v in params.items()})


@st.cache_resource(max_entries=8, show_spinner=False)
def _load(path: str, kind: str, owner_id: int, version: str) -> insp.Inspected:
    """A model and its data; ``version`` changes whenever the checkpoint does."""
    if kind == "trial":
        return insp.load_trial_model(get_conn(), owner_id)
    return insp.load_session_model(get_conn(), owner_id, int(version))


def choose_model() -> insp.Inspected | None:
    """The model named by the URL, or a picker that puts one there."""
    conn = get_conn()
    session_id, trial_id = query_int("session"), query_int("trial")
    if trial_id is not None:
        trial = studies.get_trial(conn, trial_id)
        return _load(str(db_path()), "trial", trial_id, str(trial["checkpoint_id"]))
    if session_id is not None:
        view = babysit.session_view(conn, session_id)
        nodes = {view["head_node_id"]: f"epoch {view['head_epoch']} (head)"}
        nodes.update({t["node_id"]: f"epoch {t['epoch']} · branch {t['branch']}"
                      for t in sorted(view["rollback_targets"], key=lambda t: -t["epoch"])})
        node = query_int("node")
        node = node if node in nodes else view["head_node_id"]
        chosen = st.selectbox("Checkpoint", list(nodes), index=list(nodes).index(node),
                              format_func=nodes.get, key=f"insp_node_{session_id}")
        if chosen != node:
            set_query(node=chosen if chosen != view["head_node_id"] else None)
        return _load(str(db_path()), "session", session_id, str(chosen))
    st.info("Choose a model: a babysitting session's checkpoint, or a study trial's latest one.")
    session_tab, trial_tab = st.tabs(["A babysitting session", "A trial of a study"])
    with session_tab:
        sessions = babysit.list_sessions(conn)
        if not sessions:
            st.caption("No session yet: start one on the Babysit page.")
        else:
            labels = {s["id"]: f"#{s['id']} {s['name']} · epoch {s['head_epoch']}"
                      for s in sessions}
            pick = st.selectbox("Session", list(labels), format_func=labels.get,
                                key="insp_session")
            if st.button("Inspect this session", key="insp_session_go", type="primary"):
                reopen(session=pick)
    with trial_tab:
        picked = trial_picker(conn, key="insp", button="Inspect this trial")
        if picked is not None:
            reopen(trial=picked)
    return None


def split_data(model: insp.Inspected) -> tuple[np.ndarray, np.ndarray, str]:
    split = st.radio("Data", ["validation", "training"], horizontal=True, key="insp_split")
    d = model.dataset
    return (d.X_val, d.y_val, split) if split == "validation" else (d.X_train, d.y_train, split)


def batch_norm_tab(model: insp.Inspected, X: np.ndarray, y: np.ndarray) -> None:
    s = model.state
    report = insp.batchnorm_report(s.spec, s.params, s.buffers, X, y,
                                   batch_size=min(model.batch_size, len(y)),
                                   rng=np.random.default_rng(0))
    left, right = st.columns([1, 2])
    with left:
        st.markdown("**Accuracy in training mode vs evaluation mode**")
        st.plotly_chart(mode_accuracy_figure(report.train_mode_accuracy,
                                             report.eval_mode_accuracy), width="stretch")
        st.caption(f"Training mode normalises each batch of {report.batch_size} with its own "
                   "mean and variance; evaluation mode uses the running averages gathered "
                   "during training. A large gap means the running averages do not match the "
                   "batches (too few epochs, a BN momentum too high, or tiny batches).")
    with right:
        if not report.layers:
            st.info("This model has no batch-norm layers: both modes compute the same thing. "
                    "The Experiment tab compares a net with and without batch norm.")
            return
        c = st.columns(2)
        layer = c[0].selectbox("Hidden layer", [r.layer for r in report.layers],
                               key=f"insp_layer_{model.label}")
        chosen = report.layers[layer - 1]
        n_units = chosen.z_train.shape[1]
        unit = c[1].selectbox("Units", ["all"] + list(range(n_units)),
                              key=f"insp_unit_{model.label}_{layer}")
        features = None if unit == "all" else [int(unit)]
        st.plotly_chart(bn_histograms_figure(chosen.z_train, chosen.z_hat_train, chosen.z_eval,
                                             chosen.z_hat_eval, features=features),
                        width="stretch")
    st.markdown(f"**Layer {layer}: batch statistics vs running averages, per unit**")
    st.plotly_chart(bn_stats_figure(chosen.batch_mean, chosen.running_mean, chosen.batch_var,
                                    chosen.running_var), width="stretch")


def softmax_tab(model: insp.Inspected, X: np.ndarray, y: np.ndarray, split: str) -> None:
    s, d = model.state, model.dataset
    report = insp.softmax_report(s.spec, s.params, s.buffers, X, y)
    wrong = np.flatnonzero(report.predicted != y)
    default = sorted({0, 1, *wrong[:2].tolist()} & set(range(len(y))))
    samples = st.multiselect(
        f"Samples of the {split} set (up to {MAX_SAMPLES}; misclassified: "
        f"{', '.join(map(str, wrong[:8])) or 'none'})",
        list(range(len(y))), default=default, max_selections=MAX_SAMPLES,
        key=f"insp_samples_{model.label}_{split}",
    )
    left, right = st.columns([1.3, 1])
    with left:
        if samples:
            labels = [f"#{i} (true {d.class_names[y[i]]})" for i in samples]
            st.plotly_chart(probabilities_figure(report.proba[samples], d.class_names, labels),
                            width="stretch")
            st.caption("Soft max: how sure the model is about each class (the bars of a "
                       "sample sum to 1). Hard max: the one class it predicts.")
        else:
            st.caption("Pick samples to see their class probabilities.")
    with right:
        st.metric(f"Accuracy on the {split} set", f"{report.accuracy:.1%}",
                  help=f"{int(report.confusion.trace())} of {len(y)} right")
        st.plotly_chart(confusion_figure(report.confusion, d.class_names), width="stretch")


def experiment_form(model: insp.Inspected | None) -> None:
    spec = model.state.spec if model else None
    own = f"this model's data: {display_name(model.dataset.spec)}" if model else None
    with st.form("bn_experiment", enter_to_submit=False):  # Enter launches no sessions
        st.caption("The same network, initial weights and batches, with and without batch "
                   "norm, trained by two babysitting sessions in the background.")
        c = st.columns(5)
        data = c[0].selectbox("Data", ([own] if own else []) + list(EXPERIMENT_DATA))
        hidden = c[1].text_input("Hidden layers", value=", ".join(
            map(str, spec.hidden if spec else (32, 32))))
        optimizer = c[2].selectbox("Optimizer", ["sgd", "momentum", "adam"])
        epochs = c[3].number_input("Epochs", min_value=1, max_value=200, value=15)
        batch = c[4].number_input("Batch size", min_value=2, max_value=4096, value=32)
        lr = st.select_slider("Learning rate (log scale): high on purpose", lr_options(),
                              value=1.0, format_func=lambda v: f"{v:g}")
        go = st.form_submit_button("Run the experiment", type="primary")
    if go:
        with friendly_errors("start the experiment"):
            dataset = (model.dataset.spec.to_dict() if data == own
                       else {"kind": data, "n_samples": 500, "noise": 0.2})
            ids = insp.start_bn_experiment(
                get_conn(), dataset=dataset, hidden=parse_hidden(hidden),
                activation=spec.activation if spec else "relu",
                config={"optimizer": optimizer, "learning_rate": float(lr),
                        "batch_size": int(batch)},
                epochs=int(epochs),
            )
            keep = {k: st.query_params[k] for k in ("session", "trial", "node")
                    if k in st.query_params}
            reopen(**keep, bn_exp=",".join(map(str, ids)))


def experiment_view(ids: list[int], was_busy: bool) -> None:
    runs = insp.experiment_runs(get_conn(), (ids[0], ids[1]))
    st.plotly_chart(experiment_figure({k: v["points"] for k, v in runs.items()}),
                    width="stretch")
    cols = st.columns(2)
    for col, (label, run) in zip(cols, runs.items(), strict=True):
        epochs = sum(p["val_loss"] is not None for p in run["points"])
        col.markdown(f"**{label}**: {run['status']}, {epochs} epochs"
                     + (f" ({run['message']})" if run["message"] else ""))
        col.page_link("app_pages/babysit.py", label="open in Babysit",
                      query_params={"session": str(run["session_id"])})
    busy = any(r["status"] == "running" for r in runs.values())
    if was_busy and not busy:
        st.rerun(scope="app")


st.title("Model inspector")
st.caption("Inside a trained model: what batch norm does to each layer in training and "
           "evaluation mode, and what the softmax says for single samples.")
def choose_another(key: str) -> None:
    if st.button("Choose another model", key=key):
        reopen(**({"bn_exp": st.query_params["bn_exp"]} if "bn_exp" in st.query_params else {}))


model, failed = None, True
with friendly_errors("load the model"):
    model, failed = choose_model(), False
if failed:
    choose_another("insp_reset")
if model is not None:
    head = st.columns([3, 1.4])  # at 1,024 px [3, 1] cut "Choose another…"
    head[0].markdown(f"**{plain(model.label)}** · data: {plain(display_name(model.dataset.spec))}")
    with head[1]:
        choose_another("insp_close")
    X, y, split = split_data(model)
    bn, soft, teach, exp = st.tabs(["Batch norm", "Softmax", "Boundary and activations",
                                    "Experiment: with and without BN"])
    with bn, friendly_errors("inspect batch norm"):
        batch_norm_tab(model, X, y)
    with soft, friendly_errors("inspect the softmax"):
        softmax_tab(model, X, y, split)
    with teach, friendly_errors("show the boundary and the activations"):
        teaching_tab(model, query_int("session") if query_int("trial") is None else None)
else:
    st.subheader("Experiment: with and without batch norm")
    exp = st.container()
with exp:
    ids = query_ints("bn_exp")
    experiment_form(model)
    if len(ids) == 2:
        with friendly_errors("show the experiment"):
            running = any(babysit.session_view(get_conn(), i)["status"] == "running"
                          or babysit.session_view(get_conn(), i)["pending_commands"]
                          for i in ids)
            live_part("inspector.experiment", experiment_view, ids, running, live=running)
