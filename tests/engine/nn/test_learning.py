"""The engine learns the built-in datasets (engine.data) it will be judged on."""

from __future__ import annotations

from engine.data import DatasetSpec, build_dataset
from engine.nn import ModelSpec, TrainConfig, new_state, train_segment


def test_digits_64_64_10_with_batch_norm_and_adam_reaches_95_percent_in_30_epochs():
    data = build_dataset(DatasetSpec(kind="digits"))
    assert data.X_train.shape[1] == 64 and data.n_classes == 10
    spec = ModelSpec(n_inputs=64, hidden=(64,), n_classes=10, batch_norm=True)
    result = train_segment(new_state(spec, 0), TrainConfig(optimizer="adam"), data, 30)
    assert result.status == "ok"
    best = max(row["val_acc"] for row in result.metrics)
    assert best >= 0.95, [round(r["val_acc"], 3) for r in result.metrics]
    assert result.metrics[-1]["train_loss"] < result.metrics[0]["train_loss"] / 5


def test_moons_small_net_reaches_95_percent():
    data = build_dataset(DatasetSpec(kind="moons", n_samples=500, noise=0.15, seed=3))
    spec = ModelSpec(n_inputs=2, hidden=(16, 16), n_classes=2)
    result = train_segment(new_state(spec, 0), TrainConfig(learning_rate=1e-2, batch_size=32),
                           data, 40)
    assert result.status == "ok"
    assert result.metrics[-1]["val_acc"] >= 0.95, result.metrics[-1]
