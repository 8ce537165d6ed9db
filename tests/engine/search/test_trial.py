"""trial_config: a sampled params dict -> ModelSpec kwargs, TrainConfig dict, n_epochs."""

from __future__ import annotations

import json

import pytest

from engine.search import RandomSampler, SpaceError, default_space, trial_config

# TrainConfig's fields, as pinned in docs/CONTRACTS.md
TRAIN_CONFIG_FIELDS = {
    "learning_rate": 1e-3,
    "optimizer": "adam",
    "momentum": 0.9,
    "beta1": 0.9,
    "beta2": 0.999,
    "epsilon": 1e-8,
    "batch_size": 64,
    "l2": 0.0,
    "dropout": 0.0,
    "bn_momentum": 0.9,
    "decay": "none",
    "decay_rate": 0.0,
    "decay_every": 10,
}


def test_mapping() -> None:
    params = {
        "hidden_layers": 3,
        "hidden_units": 32,
        "activation": "tanh",
        "batch_norm": False,
        "learning_rate": 0.01,
        "l2": 0,
        "batch_size": 16,
        "n_epochs": 7,
        "decay": "step",
        "decay_rate": 0.5,
    }
    model, train, n_epochs = trial_config(params, n_features=2, n_classes=3)
    assert model == {
        "n_inputs": 2,
        "hidden": (32, 32, 32),
        "n_classes": 3,
        "activation": "tanh",
        "batch_norm": False,
        "init": "he",
    }
    expected = {
        **TRAIN_CONFIG_FIELDS,
        "learning_rate": 0.01,
        "l2": 0.0,
        "batch_size": 16,
        "decay": "step",
        "decay_rate": 0.5,
    }
    assert train == expected
    assert type(train["l2"]) is float and type(train["batch_size"]) is int
    assert n_epochs == 7


def test_defaults_mirror_the_contract() -> None:
    model, train, n_epochs = trial_config({}, n_features=4, n_classes=2)
    assert train == TRAIN_CONFIG_FIELDS
    assert model["hidden"] == (64,) and model["activation"] == "relu" and model["batch_norm"]
    assert n_epochs == 20


def test_every_sample_of_the_default_space_maps_to_json() -> None:
    for params in RandomSampler().sample(default_space(), 20, seed=3):
        model, train, n_epochs = trial_config(params, n_features=2, n_classes=2)
        assert len(model["hidden"]) == 2 and model["hidden"][0] == params["hidden_units"]
        assert train["learning_rate"] == params["learning_rate"]
        json.dumps([model, train, n_epochs])


@pytest.mark.parametrize(
    ("params", "n_features", "n_classes", "message"),
    [
        ({"lr": 0.1}, 2, 2, "unknown hyperparameter 'lr'"),
        ({"dropout": 1.0}, 2, 2, "dropout must be in [0, 1), got value=1.0"),
        ({"optimizer": "adamw"}, 2, 2, "optimizer must be one of"),
        ({"decay": "exponential"}, 2, 2, "decay_rate must be in (0, 1] when decay can be"),
        ({}, 0, 2, "n_features must be an integer >= 1, got n_features=0"),
        ({}, 2, 1, "n_classes must be an integer >= 2, got n_classes=1"),
    ],
)
def test_errors(params: dict, n_features: int, n_classes: int, message: str) -> None:
    with pytest.raises(SpaceError) as info:
        trial_config(params, n_features, n_classes)
    assert message in str(info.value)


def test_engine_accepts_the_dicts() -> None:
    """Against the real engine once it exports ModelSpec and TrainConfig (skipped before)."""
    nn = pytest.importorskip("engine.nn")
    if not hasattr(nn, "ModelSpec") or not hasattr(nn, "TrainConfig"):
        pytest.skip("engine.nn does not export ModelSpec and TrainConfig yet")
    for params in RandomSampler().sample(default_space(), 10, seed=5):
        model, train, _ = trial_config(params, n_features=2, n_classes=3)
        assert nn.ModelSpec(**model).hidden == model["hidden"]
        assert nn.TrainConfig(**train).to_dict() == train
