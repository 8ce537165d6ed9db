"""build_dataset: determinism, stratified split, train-only standardisation, and the UI views."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.data import (
    BUILTIN_KINDS,
    TOY_KINDS,
    Dataset,
    DatasetSpec,
    build_dataset,
    describe,
    display_name,
    grid_for_boundary,
    model_coordinates,
    original_coordinates,
)
from engine.data.split import fit_standardizer, stratified_split

SMALL = {"n_samples": 300, "n_classes": 3, "n_features": 12}


def _spec(kind, **changes):
    return DatasetSpec(kind=kind, **{**SMALL, **changes})


@pytest.mark.parametrize("kind", BUILTIN_KINDS)
def test_same_spec_same_arrays_bit_for_bit(kind):
    a, b = build_dataset(_spec(kind, seed=4)), build_dataset(_spec(kind, seed=4).to_dict())
    for name in ("X_train", "y_train", "X_val", "y_val", "scaler_mean", "scaler_std"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = build_dataset(_spec(kind, seed=5))
    assert not np.array_equal(a.y_val, c.y_val) or not np.array_equal(a.X_val, c.X_val)


@pytest.mark.parametrize("kind", BUILTIN_KINDS)
def test_shapes_dtypes_and_read_only(kind):
    d = build_dataset(_spec(kind))
    n_features = {"digits": 64, "synthetic": 12}.get(kind, 2)
    assert isinstance(d, Dataset)
    assert d.X_train.dtype == np.float32 and d.X_val.dtype == np.float32
    assert d.y_train.dtype == np.int64 and d.y_val.dtype == np.int64
    assert d.X_train.shape[1] == d.X_val.shape[1] == d.n_features == n_features
    assert len(d.X_train) == len(d.y_train) and len(d.X_val) == len(d.y_val)
    assert len(d.feature_names) == n_features and len(d.class_names) == d.n_classes
    assert set(np.unique(d.y_train)) == set(range(d.n_classes))
    for a in (d.X_train, d.y_train, d.X_val, d.y_val, d.scaler_mean, d.scaler_std):
        assert not a.flags.writeable
    assert "train=" in repr(d)


@pytest.mark.parametrize("val_fraction", [0.01, 0.2, 0.5, 0.9])
def test_split_is_stratified_and_keeps_every_class_in_both_parts(val_fraction):
    d = build_dataset(
        DatasetSpec(kind="blobs", n_samples=100, n_classes=10, val_fraction=val_fraction)
    )
    train_counts = np.bincount(d.y_train, minlength=10)
    val_counts = np.bincount(d.y_val, minlength=10)
    assert (train_counts >= 1).all() and (val_counts >= 1).all()
    assert (train_counts + val_counts == 10).all()
    expected = min(max(round(val_fraction * 10), 1), 9)
    assert (val_counts == expected).all()


def test_split_covers_every_row_exactly_once():
    y = np.repeat(np.arange(4), [5, 9, 13, 3])
    train, val = stratified_split(y, 0.25, np.random.default_rng(0))
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(y)))
    np.testing.assert_array_equal(np.bincount(y[val]), [1, 2, 3, 1])


def test_split_names_a_class_that_is_too_small():
    with pytest.raises(ValueError, match="class 'cat' has 1 row"):
        stratified_split(np.array([0, 0, 1, 0]), 0.5, np.random.default_rng(0), ("dog", "cat"))


def test_split_does_not_depend_on_standardize():
    raw = build_dataset(_spec("spirals", standardize=False))
    std = build_dataset(_spec("spirals"))
    np.testing.assert_array_equal(raw.y_train, std.y_train)
    np.testing.assert_allclose(original_coordinates(std, std.X_train), raw.X_train, atol=1e-5)


@pytest.mark.parametrize("kind", ["moons", "digits", "synthetic"])
def test_standardisation_is_fitted_on_the_training_part_only(kind):
    raw = build_dataset(_spec(kind, standardize=False))
    d = build_dataset(_spec(kind))
    mean, std = fit_standardizer(raw.X_train.astype(np.float64))
    np.testing.assert_allclose(d.scaler_mean, mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d.scaler_std, std, rtol=1e-6)
    varying = raw.X_train.std(0) > 0
    np.testing.assert_allclose(d.X_train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(d.X_train.std(0)[varying], 1.0, atol=1e-4)
    # validation uses the training statistics, so its own mean is not exactly zero
    assert np.abs(d.X_val.mean(0)).max() > 1e-3
    np.testing.assert_allclose(d.X_val, (raw.X_val - mean) / std, atol=1e-5)


def test_constant_feature_gets_std_one():
    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    mean, std = fit_standardizer(X)
    np.testing.assert_allclose(mean, [3.0, 5.0])
    np.testing.assert_allclose(std, [np.sqrt(8 / 3), 1.0])


def test_noise_in_the_spec_changes_the_data():
    a = build_dataset(DatasetSpec(kind="circles", noise=0.0, standardize=False))
    b = build_dataset(DatasetSpec(kind="circles", noise=0.3, standardize=False))
    radius = np.linalg.norm(a.X_train, axis=1)
    assert set(np.round(radius, 6)) == {0.5, 1.0}
    assert np.linalg.norm(b.X_train, axis=1).std() > radius.std()


def test_csv_text_with_a_builtin_kind_is_refused():
    with pytest.raises(ValueError, match="csv_text is only used with kind 'csv'"):
        build_dataset(DatasetSpec(kind="moons"), csv_text="a,b\n1,2\n")


def test_describe_is_json_ready_and_counts_classes():
    d = build_dataset(DatasetSpec(kind="blobs", n_samples=90, n_classes=3, val_fraction=0.2))
    info = describe(d)
    json.dumps(info)
    assert info["n_train"] == 72 and info["n_val"] == 18
    assert info["n_features"] == 2 and info["n_classes"] == 3
    assert info["class_counts_train"] == [24, 24, 24]
    assert info["class_counts_val"] == [6, 6, 6]
    assert info["class_names"] == ["0", "1", "2"]
    assert info["feature_names"] == ["x1", "x2"]
    assert info["standardized"] is True
    assert info["name"] == "blobs (90 samples, 3 classes, noise 0.1)"


def test_display_name_prefers_the_given_name():
    assert display_name(DatasetSpec(kind="digits", name="My digits")) == "My digits"
    assert display_name(DatasetSpec(kind="digits")) == "digits (8x8 images)"
    assert "784 features" in display_name(DatasetSpec(kind="synthetic", n_features=784))


@pytest.mark.parametrize("standardize", [True, False])
def test_grid_for_boundary_covers_the_data_in_original_units(standardize):
    d = build_dataset(DatasetSpec(kind="moons", standardize=standardize))
    xx, yy, X_grid = grid_for_boundary(d, resolution=30, margin=0.1)
    assert xx.shape == yy.shape == (30, 30)
    assert X_grid.shape == (900, 2) and X_grid.dtype == np.float32
    points = original_coordinates(d, np.concatenate([d.X_train, d.X_val]))
    assert xx.min() < points[:, 0].min() and xx.max() > points[:, 0].max()
    assert yy.min() < points[:, 1].min() and yy.max() > points[:, 1].max()
    # X_grid row k is the model input for (xx.flat[k], yy.flat[k])
    back = original_coordinates(d, X_grid)
    np.testing.assert_allclose(back[:, 0], xx.ravel(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(back[:, 1], yy.ravel(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        model_coordinates(d, points), np.concatenate([d.X_train, d.X_val]), atol=1e-5
    )


def test_grid_for_boundary_refuses_non_2d_and_bad_resolution():
    with pytest.raises(ValueError, match="2-D dataset; 'digits' has 64 features"):
        grid_for_boundary(build_dataset(DatasetSpec(kind="digits")))
    moons = build_dataset(DatasetSpec(kind="moons"))
    with pytest.raises(ValueError, match=r"resolution must be in \[2, 1000\]; got 1"):
        grid_for_boundary(moons, resolution=1)


@pytest.mark.parametrize("kind", TOY_KINDS)
def test_every_toy_set_is_two_dimensional(kind):
    assert build_dataset(DatasetSpec(kind=kind)).n_features == 2
