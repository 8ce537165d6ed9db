"""The 2-D toy generators: shapes, balance, determinism, and what noise does."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.toy import TOY_MAKERS, class_sizes, make_toy

KINDS = list(TOY_MAKERS)


def _make(kind, n=301, noise=0.1, n_classes=3, seed=0):
    return make_toy(kind, n, noise, n_classes, np.random.default_rng(seed))


def test_class_sizes_are_balanced():
    assert class_sizes(10, 3).tolist() == [4, 3, 3]
    assert class_sizes(9, 3).tolist() == [3, 3, 3]


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_dtypes_and_balance(kind):
    X, y = _make(kind)
    assert X.shape == (301, 2) and X.dtype == np.float64
    assert y.shape == (301,) and y.dtype == np.int64
    n_classes = 3 if kind in ("spirals", "blobs") else 2
    counts = np.bincount(y)
    assert len(counts) == n_classes
    assert counts.max() - counts.min() <= 1
    assert np.isfinite(X).all()


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_data_other_seed_other_data(kind):
    X1, y1 = _make(kind, seed=7)
    X2, y2 = _make(kind, seed=7)
    X3, _ = _make(kind, seed=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("kind", KINDS)
def test_rows_are_shuffled(kind):
    _, y = _make(kind, n=200)
    assert (np.diff(y) != 0).sum() > 20  # not sorted by class


@pytest.mark.parametrize("kind", ["moons", "circles", "spirals", "blobs"])
def test_noise_is_the_std_of_the_displacement(kind):
    # Same seed: the clean points are the same, so the difference is the added noise alone
    # (the shuffle is drawn after the noise, so compare sorted by class and position).
    def clean_and_noisy(noise):
        X, y = _make(kind, n=2000, noise=noise, seed=3)
        return X, y

    X0, y0 = clean_and_noisy(0.0)
    for noise in (0.05, 0.3):
        X, y = clean_and_noisy(noise)
        # Distance of each noisy point to the nearest clean point of its class is at most the
        # displacement; its mean grows with noise.
        spread = np.mean([np.min(np.linalg.norm(X0[y0 == k] - p, axis=1)) for p, k in zip(X, y)])
        assert 0.2 * noise < spread < 1.5 * noise


def test_noise_free_geometry():
    X, y = _make("circles", noise=0.0)
    radius = np.linalg.norm(X, axis=1)
    np.testing.assert_allclose(radius[y == 0], 1.0)
    np.testing.assert_allclose(radius[y == 1], 0.5)

    X, y = _make("moons", noise=0.0)
    np.testing.assert_allclose(np.linalg.norm(X[y == 0], axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(X[y == 1] - [1.0, 0.5], axis=1), 1.0)

    X, y = _make("xor", noise=0.0)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(np.int64))
    assert np.abs(X).max() <= 1.0

    X, y = _make("spirals", noise=0.0, n_classes=4)
    assert np.linalg.norm(X, axis=1).max() <= 1.0 + 1e-12

    X, y = _make("blobs", noise=0.0, n_classes=5)
    for k in range(5):
        assert len(np.unique(X[y == k], axis=0)) == 1  # each blob collapses to its centre
    centres = np.array([X[y == k][0] for k in range(5)])
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0)


@pytest.mark.parametrize("kind", ["spirals", "blobs"])
@pytest.mark.parametrize("n_classes", [2, 5, 10])
def test_n_classes_is_respected(kind, n_classes):
    _, y = _make(kind, n=100, n_classes=n_classes)
    assert np.bincount(y).tolist() == class_sizes(100, n_classes).tolist()


def test_unknown_kind_names_the_valid_ones():
    with pytest.raises(ValueError, match="moons.*got kind='digits'"):
        make_toy("digits", 10, 0.1, 2, np.random.default_rng(0))
