"""MLPClassifier: scikit-learn conventions over train_segment."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import DatasetSpec, build_dataset
from engine.nn import MLPClassifier
from engine.nn.estimator import NotFittedError


@pytest.fixture(scope="module")
def moons():
    data = build_dataset(DatasetSpec(kind="moons", n_samples=400, noise=0.1, seed=2))
    return data.X_train, data.y_train, data.X_val, data.y_val


def test_fit_learns_and_follows_sklearn_conventions(moons):
    X, y, X_test, y_test = moons
    clf = MLPClassifier(hidden=(16, 16), learning_rate=1e-2, batch_size=32, n_epochs=30,
                        random_state=0)
    assert not hasattr(clf, "state_")  # __init__ only stores
    assert clf.fit(X, y) is clf
    assert clf.score(X_test, y_test) >= 0.95
    assert list(clf.classes_) == [0, 1] and clf.n_features_in_ == 2
    assert len(clf.history_) == 30 and clf.state_.epoch == 30
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X_test), proba.argmax(axis=1))


def test_random_state_makes_fits_reproducible(moons):
    X, y, X_test, _ = moons
    a = MLPClassifier(n_epochs=3, random_state=5, dropout=0.2).fit(X, y).predict_proba(X_test)
    b = MLPClassifier(n_epochs=3, random_state=5, dropout=0.2).fit(X, y).predict_proba(X_test)
    c = MLPClassifier(n_epochs=3, random_state=6, dropout=0.2).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_string_labels_and_multiclass(rng):
    X = rng.standard_normal((120, 3))
    labels = np.array(["cat", "dog", "emu"])
    y = labels[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    clf = MLPClassifier(hidden=(8,), n_epochs=40, learning_rate=1e-2, random_state=1).fit(X, y)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    assert set(clf.predict(X)) <= set(labels)
    assert clf.score(X, y) > 0.8
    with pytest.raises(ValueError, match=r"y has labels \['fox'\] not in classes_"):
        clf.partial_fit(X[:5], np.array(["fox"] * 5))


def test_partial_fit_runs_one_epoch_each_call(moons):
    X, y, _, _ = moons
    clf = MLPClassifier(random_state=0)
    clf.partial_fit(X, y, classes=[0, 1])
    clf.partial_fit(X, y)
    assert clf.state_.epoch == 2 and len(clf.history_) == 2
    with pytest.raises(ValueError, match="X has 3 features, but the model was fitted with 2"):
        clf.partial_fit(np.zeros((4, 3)), [0, 1, 0, 1])


def test_get_set_params_and_validation(moons):
    X, y, _, _ = moons
    clf = MLPClassifier(learning_rate=0.1)
    params = clf.get_params()
    assert params["learning_rate"] == 0.1 and params["hidden"] == (64,)
    assert clf.set_params(learning_rate=-1.0, n_epochs=1) is clf
    with pytest.raises(ValueError, match=r"^learning_rate must be > 0, got -1.0$"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="optimizer must be one of sgd, momentum, rmsprop, adam"):
        clf.set_params(learning_rate=0.1, optimizer="adagrad").fit(X, y)
    with pytest.raises(ValueError, match="invalid parameter 'lr' for MLPClassifier; valid:"):
        clf.set_params(lr=0.1)
    with pytest.raises(ValueError, match="X contains NaN"):
        MLPClassifier().fit(np.full((4, 2), np.nan), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="need at least 2 classes"):
        MLPClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(NotFittedError, match="not fitted yet"):
        MLPClassifier().predict(X)
    assert "learning_rate=0.1" in repr(MLPClassifier(learning_rate=0.1))


def test_divergence_warns_and_keeps_the_last_good_state(moons):
    X, y, _, _ = moons
    clf = MLPClassifier(optimizer="sgd", learning_rate=1e3, batch_norm=False, n_epochs=5,
                        random_state=0)
    with pytest.warns(RuntimeWarning, match="training diverged: loss became"):
        clf.fit(X, y)
    assert clf.status_ == "diverged"
    assert np.isfinite(clf.predict_proba(X)).all()
