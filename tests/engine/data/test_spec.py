"""DatasetSpec: validation messages and the JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.data import BUILTIN_KINDS, KINDS, TOY_KINDS, DatasetSpec, csv_sha256


def test_kind_lists():
    assert TOY_KINDS == ("moons", "circles", "spirals", "blobs", "xor")
    assert set(BUILTIN_KINDS) == set(TOY_KINDS) | {"digits", "synthetic"}
    assert "csv" in KINDS and "csv" not in BUILTIN_KINDS


def test_defaults_follow_the_contract():
    spec = DatasetSpec(kind="moons")
    assert spec.to_dict() == {
        "kind": "moons",
        "n_samples": 500,
        "noise": 0.1,
        "n_classes": 2,
        "n_features": 20,
        "seed": 0,
        "val_fraction": 0.2,
        "standardize": True,
        "csv_sha256": "",
        "label_column": "",
        "name": "",
    }


def test_spec_is_frozen_and_hashable():
    spec = DatasetSpec(kind="blobs", n_classes=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 3  # type: ignore[misc]
    assert {spec: 1}[DatasetSpec(kind="blobs", n_classes=4)] == 1


def test_from_dict_rejects_unknown_keys_naming_them():
    with pytest.raises(ValueError, match=r"unknown DatasetSpec field\(s\): 'colour', 'size'"):
        DatasetSpec.from_dict({"kind": "moons", "size": 3, "colour": "red"})


def test_from_dict_needs_kind_and_a_dict():
    with pytest.raises(ValueError, match="needs 'kind'"):
        DatasetSpec.from_dict({"noise": 0.2})
    with pytest.raises(ValueError, match="dict is needed"):
        DatasetSpec.from_dict(["moons"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"kind": "mnist"}, ["kind", "'mnist'", "moons", "csv"]),
        ({"n_samples": 5}, ["n_samples", "5", "[10, 200000]"]),
        ({"n_samples": 300_000}, ["n_samples", "300000", "[10, 200000]"]),
        ({"n_samples": 100.0}, ["n_samples", "integer", "100.0"]),
        ({"n_samples": True}, ["n_samples", "integer", "True"]),
        ({"noise": -0.1}, ["noise", "-0.1", "[0.0, 10.0]"]),
        ({"noise": float("nan")}, ["noise", "nan"]),
        ({"noise": "0.1"}, ["noise", "number", "'0.1'"]),
        ({"n_classes": 1}, ["n_classes", "1", "[2, 100]"]),
        ({"n_features": 1}, ["n_features", "1", "[2, 10000]"]),
        ({"seed": -1}, ["seed", "-1"]),
        ({"val_fraction": 0.0}, ["val_fraction", "0.0", "[0.01, 0.9]"]),
        ({"val_fraction": 1.0}, ["val_fraction", "1.0", "[0.01, 0.9]"]),
        ({"standardize": 1}, ["standardize", "true or false", "1"]),
        ({"csv_sha256": "abc"}, ["csv_sha256", "64", "'abc'"]),
        ({"name": "x" * 201}, ["name", "200", "201"]),
        ({"label_column": 3}, ["label_column", "string", "3"]),
        ({"kind": "blobs", "n_classes": 10, "n_samples": 15}, ["n_samples=15", "n_classes=10"]),
        ({"kind": "csv", "label_column": "y"}, ["csv", "csv_sha256"]),
        ({"kind": "csv", "csv_sha256": "0" * 64}, ["csv", "label_column"]),
    ],
)
def test_invalid_fields_are_named_with_value_and_range(changes, fragments):
    d = {"kind": "moons", **changes}
    with pytest.raises(ValueError) as info:
        DatasetSpec.from_dict(d)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_numpy_numbers_are_stored_as_plain_python_numbers():
    spec = DatasetSpec(kind="synthetic", n_samples=np.int64(1000), noise=np.float32(0.5), seed=0)
    assert type(spec.n_samples) is int and type(spec.noise) is float
    json.dumps(spec.to_dict())
    assert DatasetSpec(kind="moons", noise=0).to_dict()["noise"] == 0.0


def test_unused_fields_are_kept_but_the_two_class_sets_ignore_n_classes():
    # A form may keep n_classes=7 while switching to moons: valid, stored, unused.
    spec = DatasetSpec(kind="moons", n_classes=7, n_samples=10)
    assert spec.n_classes == 7


def test_csv_spec_is_valid_with_hash_and_label():
    spec = DatasetSpec(kind="csv", csv_sha256=csv_sha256("a,b\n"), label_column="b")
    assert DatasetSpec.from_dict(spec.to_dict()) == spec


_text = st.text(st.characters(codec="utf-8"), max_size=30)
specs = st.builds(
    DatasetSpec,
    kind=st.sampled_from(BUILTIN_KINDS),
    n_samples=st.integers(200, 200_000),
    noise=st.floats(0.0, 10.0, allow_nan=False),
    n_classes=st.integers(2, 100),
    n_features=st.integers(2, 10_000),
    seed=st.integers(0, 2**63 - 1),
    val_fraction=st.floats(0.01, 0.9),
    standardize=st.booleans(),
    label_column=_text,
    name=_text,
) | st.builds(
    DatasetSpec,
    kind=st.just("csv"),
    csv_sha256=st.binary(max_size=20).map(lambda b: csv_sha256(b.hex())),
    label_column=_text.filter(bool),
    seed=st.integers(0, 2**63 - 1),
)


@given(specs)
def test_json_round_trip_is_exact(spec):
    text = json.dumps(spec.to_dict())
    back = DatasetSpec.from_dict(json.loads(text))
    assert back == spec
    assert back.to_dict() == spec.to_dict()
