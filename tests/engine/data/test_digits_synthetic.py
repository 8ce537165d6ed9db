"""The shipped digits and the large synthetic benchmark set."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import DatasetSpec, build_dataset
from engine.data import digits as digits_module
from engine.data.digits import DIGITS_PATH, load_digit_images, load_digits
from engine.data.synthetic import make_synthetic


def test_digits_file_is_small_and_complete():
    assert DIGITS_PATH.stat().st_size < 100_000
    images, labels = load_digit_images()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,)
    assert images.min() == 0 and images.max() == 16
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert not images.flags.writeable


def test_load_digits_flattens_rows():
    X, y = load_digits()
    images, labels = load_digit_images()
    assert X.shape == (1797, 64) and y.dtype == np.int64
    np.testing.assert_array_equal(X[5].reshape(8, 8), images[5])
    # the first image of the UCI set is a zero
    assert y[0] == 0 and X[0, :8].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


def test_digits_dataset_keeps_pixel_values_without_standardisation():
    d = build_dataset(DatasetSpec(kind="digits", standardize=False))
    X = np.concatenate([d.X_train, d.X_val])
    assert X.shape == (1797, 64) and d.n_classes == 10
    assert d.class_names == tuple("0123456789")
    assert d.feature_names[:2] == ("pixel_0_0", "pixel_0_1") and len(d.feature_names) == 64
    assert set(np.unique(X)) <= set(range(17))
    assert d.scaler_mean is None and d.scaler_std is None


def test_digits_standardised_guards_constant_pixels():
    d = build_dataset(DatasetSpec(kind="digits"))
    assert np.isfinite(d.X_train).all() and np.isfinite(d.X_val).all()
    constant = d.scaler_std == 1.0  # pixel (0, 0) is blank in every image
    assert constant[0]
    assert np.all(d.X_train[:, constant] == 0.0)


def test_damaged_digits_file_is_an_error(tmp_path, monkeypatch):
    images, labels = load_digit_images()
    damaged = images.copy()
    damaged[0, 0, 0] = 1
    path = tmp_path / "digits.npz"
    np.savez_compressed(path, images=damaged, labels=labels)
    monkeypatch.setattr(digits_module, "DIGITS_PATH", path)
    digits_module._load.cache_clear()
    try:
        with pytest.raises(ValueError, match="damaged.*make_digits.py"):
            load_digits()
    finally:
        digits_module._load.cache_clear()


def test_synthetic_shapes_types_and_balanced_classes():
    """How fast the benchmark size (60,000 x 784) is made: benchmarks/synthetic_data.py."""
    X, y = make_synthetic(6_000, 78, 10, 0.1, np.random.default_rng(0))
    assert X.shape == (6_000, 78) and X.dtype == np.float32
    assert y.shape == (6_000,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [600] * 10


def test_synthetic_is_deterministic_per_seed():
    a = make_synthetic(500, 30, 4, 0.2, np.random.default_rng(5))
    b = make_synthetic(500, 30, 4, 0.2, np.random.default_rng(5))
    c = make_synthetic(500, 30, 4, 0.2, np.random.default_rng(6))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_synthetic_noise_is_added_with_the_given_std():
    # The noise is drawn last, so with one seed the difference is noise * N(0, 1) exactly.
    X0, y0 = make_synthetic(4000, 50, 3, 0.0, np.random.default_rng(1))
    X1, y1 = make_synthetic(4000, 50, 3, 0.7, np.random.default_rng(1))
    np.testing.assert_array_equal(y0, y1)
    assert abs((X1 - X0).std() - 0.7) < 0.01


def test_synthetic_signal_lives_in_a_low_rank_subspace():
    X, _ = make_synthetic(2000, 100, 5, 0.0, np.random.default_rng(2))
    singular = np.linalg.svd(X - X.mean(0), compute_uv=False)
    assert singular[16] < 1e-3 * singular[0]  # rank 16 without noise


def _nearest_centroid_accuracy(d):
    centroids = np.stack([d.X_train[d.y_train == k].mean(0) for k in range(d.n_classes)])
    dist = ((d.X_val[:, None, :] - centroids[None]) ** 2).sum(-1)
    return float((dist.argmin(1) == d.y_val).mean())


def test_synthetic_is_learnable_but_not_trivial():
    d = build_dataset(DatasetSpec(kind="synthetic", n_samples=3000, n_features=100, n_classes=5))
    acc = _nearest_centroid_accuracy(d)
    assert 0.4 < acc < 0.95  # chance is 0.2; classes are mixtures, so one centroid is not enough
    harder = build_dataset(
        DatasetSpec(kind="synthetic", n_samples=3000, n_features=100, n_classes=5, noise=2.0)
    )
    assert _nearest_centroid_accuracy(harder) < acc
