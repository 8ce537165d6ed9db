"""engine.introspect: batch norm in both modes, softmax probabilities, confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.introspect import (
    batchnorm_report,
    confusion_matrix,
    hard_max,
    softmax_report,
    trace_forward,
)
from engine.nn.layers import BN_EPS
from engine.nn.model import ModelSpec, init_params, predict_proba


def _model(rng, *, batch_norm=True, n_classes=3, dtype="float64"):
    spec = ModelSpec(n_inputs=4, hidden=(8, 6), n_classes=n_classes, batch_norm=batch_norm,
                     dtype=dtype)
    params, buffers = init_params(spec, rng)
    # Running averages that differ from any batch's statistics, as after real training.
    for name in list(buffers):
        shape = buffers[name].shape
        if name.startswith("running_mean"):
            buffers[name] = rng.normal(0.0, 0.5, shape).astype(dtype)
        else:
            buffers[name] = rng.uniform(0.5, 2.0, shape).astype(dtype)
    return spec, params, buffers


@pytest.fixture
def data(rng):
    X = rng.normal(size=(50, 4)) * 2.0 + 1.0
    y = rng.integers(0, 3, size=50)
    return X, y


def test_eval_mode_normalises_with_running_averages(rng, data):
    spec, params, buffers = _model(rng)
    X, y = data
    report = batchnorm_report(spec, params, buffers, X, y)
    assert len(report.layers) == 2
    for layer in report.layers:
        i = layer.layer
        np.testing.assert_array_equal(layer.running_mean, buffers[f"running_mean{i}"])
        expected = (layer.z_eval - buffers[f"running_mean{i}"]) / np.sqrt(
            buffers[f"running_var{i}"] + BN_EPS
        )
        np.testing.assert_allclose(layer.z_hat_eval, expected, rtol=1e-12)
        # The running averages were not the batch's: eval-mode z_hat is not standardised.
        assert not np.allclose(layer.z_hat_eval.mean(axis=0), 0.0, atol=1e-3)


def test_train_mode_normalises_with_batch_statistics(rng, data):
    spec, params, buffers = _model(rng)
    X, y = data
    report = batchnorm_report(spec, params, buffers, X, y)
    for layer in report.layers:
        np.testing.assert_allclose(layer.batch_mean, layer.z_train.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(layer.batch_var, layer.z_train.var(axis=0), rtol=1e-12)
        np.testing.assert_allclose(layer.z_hat_train.mean(axis=0), 0.0, atol=1e-10)
        np.testing.assert_allclose(layer.z_hat_train.var(axis=0), 1.0, rtol=1e-3)
    # Layer 1 sees the same input in both modes; layer 2 does not (layer 1 differed).
    np.testing.assert_array_equal(report.layers[0].z_train, report.layers[0].z_eval)
    assert not np.allclose(report.layers[1].z_train, report.layers[1].z_eval)


def test_inspection_changes_nothing(rng, data):
    spec, params, buffers = _model(rng)
    before = {k: v.copy() for k, v in {**params, **buffers}.items()}
    batchnorm_report(spec, params, buffers, *data, batch_size=7, rng=rng)
    for k, v in {**params, **buffers}.items():
        np.testing.assert_array_equal(v, before[k])


def test_eval_mode_matches_the_models_predict_proba(rng, data):
    for n_classes in (2, 3):
        spec, params, buffers = _model(rng, n_classes=n_classes)
        _, proba = trace_forward(spec, params, buffers, data[0], training=False)
        np.testing.assert_allclose(proba, predict_proba(spec, params, buffers, data[0]))


def test_accuracies_in_both_modes(rng, data):
    spec, params, buffers = _model(rng)
    X, y = data
    report = batchnorm_report(spec, params, buffers, X, y)
    _, p_train = trace_forward(spec, params, buffers, X, training=True)
    _, p_eval = trace_forward(spec, params, buffers, X, training=False)
    assert report.train_mode_accuracy == pytest.approx(np.mean(p_train.argmax(1) == y))
    assert report.eval_mode_accuracy == pytest.approx(np.mean(p_eval.argmax(1) == y))
    assert report.batch_size == 50 and report.n_samples == 50
    small = batchnorm_report(spec, params, buffers, X, y, batch_size=10)
    assert 0.0 <= small.train_mode_accuracy <= 1.0


def test_without_batch_norm_both_modes_agree(rng, data):
    spec, params, buffers = _model(rng, batch_norm=False)
    report = batchnorm_report(spec, params, buffers, *data, batch_size=5)
    assert report.layers == []
    assert report.train_mode_accuracy == report.eval_mode_accuracy


def test_softmax_report(rng, data):
    spec, params, buffers = _model(rng, dtype="float32")
    X, y = data
    report = softmax_report(spec, params, buffers, X, y)
    assert report.proba.shape == (50, 3)
    np.testing.assert_allclose(report.proba.sum(axis=1), 1.0, rtol=1e-5)
    assert report.confusion.sum() == 50
    np.testing.assert_array_equal(report.confusion.sum(axis=1), np.bincount(y, minlength=3))
    assert report.confusion.trace() == round(report.accuracy * 50)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 30), st.integers(2, 6), st.integers(0, 2**32 - 1),
)
def test_confusion_matrix_counts_every_sample(n, c, seed):
    g = np.random.default_rng(seed)
    y_true, y_pred = g.integers(0, c, n), g.integers(0, c, n)
    cm = confusion_matrix(y_true, y_pred, c)
    assert cm.shape == (c, c) and cm.sum() == n
    assert cm.trace() == int((y_true == y_pred).sum())
    np.testing.assert_array_equal(cm.sum(axis=0), np.bincount(y_pred, minlength=c))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 20), st.integers(2, 5), st.integers(0, 2**32 - 1))
def test_probabilities_sum_to_one_and_hard_max_is_one_hot(n, c, seed):
    g = np.random.default_rng(seed)
    spec = ModelSpec(n_inputs=3, hidden=(5,), n_classes=c, batch_norm=bool(seed % 2))
    params, buffers = init_params(spec, g)
    X = g.normal(size=(n, 3)) * 10
    _, proba = trace_forward(spec, params, buffers, X, training=False)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    one_hot = hard_max(proba)
    np.testing.assert_array_equal(one_hot.sum(axis=1), 1)
    np.testing.assert_array_equal(one_hot.argmax(axis=1), proba.argmax(axis=1))


def test_bad_inputs_name_the_problem(rng, data):
    spec, params, buffers = _model(rng)
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        trace_forward(spec, params, buffers, np.zeros((3, 5)), training=False)
    with pytest.raises(ValueError, match="batch_size"):
        batchnorm_report(spec, params, buffers, *data, batch_size=0)
    with pytest.raises(ValueError, match="y_pred must hold classes 0..2"):
        confusion_matrix(np.array([0, 1]), np.array([0, 3]), 3)


# --- loading models to inspect, and the experiment's validation (a temporary database) ------


@pytest.fixture
def conn(db_path):
    from engine.storage.db import connect

    connection = connect(db_path)
    yield connection
    connection.close()


def test_load_session_model_at_head_and_at_a_node(conn):
    from engine import babysit
    from engine.introspect import load_session_model

    session_id = babysit.new_session(
        conn, name="s", model={"hidden": [4]}, dataset={"kind": "moons", "n_samples": 60},
        config={"batch_size": 16}, seed=0)
    babysit.execute(conn, session_id, "run", {"epochs": 2})
    head = load_session_model(conn, session_id)
    assert head.state.epoch == 2 and head.batch_size == 16
    assert head.dataset.X_val.shape[1] == head.state.spec.n_inputs == 2
    root = babysit.session_view(conn, session_id)["rollback_targets"][0]["node_id"]
    assert load_session_model(conn, session_id, root).state.epoch == 0
    report = softmax_report(head.state.spec, head.state.params, head.state.buffers,
                            head.dataset.X_val, head.dataset.y_val)
    assert report.confusion.sum() == len(head.dataset.y_val)


def test_a_trial_without_checkpoint_is_a_clear_lookup_error(conn):
    from engine.introspect import load_trial_model
    from engine.storage import studies
    from tests.app.fakes import fake_study

    study_id = fake_study(conn, n_trials=1, n_epochs=2, finished=0, status="running")
    trial = studies.list_trials(conn, study_id)[0]
    with pytest.raises(LookupError, match="has no checkpoint yet"):
        load_trial_model(conn, trial["id"])


def test_bn_experiment_refuses_bad_settings_before_creating_anything(conn):
    from engine import babysit
    from engine.introspect import start_bn_experiment

    moons = {"kind": "moons", "n_samples": 60}
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        start_bn_experiment(conn, dataset=moons, epochs=0)
    with pytest.raises(ValueError, match="learning_rate"):
        start_bn_experiment(conn, dataset=moons, config={"learning_rate": -1.0})
    assert babysit.list_sessions(conn) == []
