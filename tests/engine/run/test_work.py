"""engine.run.work.run_segment: the picklable work unit (task dict in, result dict out)."""

from __future__ import annotations

import math
import pickle

import pytest

from engine.data import DatasetSpec, csv_sha256
from engine.nn import ModelSpec, TrainConfig, sha256_hex, state_from_bytes, train
from engine.run import work

MOONS = DatasetSpec(kind="moons", n_samples=300, noise=0.2, seed=4).to_dict()
MODEL = ModelSpec(n_inputs=2, hidden=(8, 8), n_classes=2).to_dict()
RESULT_KEYS = {"checkpoint", "sha256", "epoch", "metrics", "status", "message", "seconds"}


def task(**changes) -> dict:
    base = {"model": MODEL, "config": TrainConfig(learning_rate=1e-2, batch_size=32,
                                                  dropout=0.1).to_dict(),
            "dataset": MOONS, "csv_text": None, "checkpoint": None, "seed": 7, "n_epochs": 3}
    return {**base, **changes}


@pytest.fixture(autouse=True)
def fresh_caches():
    work._datasets.clear()
    train.clear_cache()
    yield
    work._datasets.clear()
    train.clear_cache()


def test_run_segment_returns_the_contract():
    result = work.run_segment({**task(), "health_last": True})
    assert set(result) == RESULT_KEYS
    assert result["status"] == "ok" and result["message"] == "" and result["epoch"] == 3
    assert result["sha256"] == sha256_hex(result["checkpoint"])
    assert [m["epoch"] for m in result["metrics"]] == [1, 2, 3]
    assert all(math.isfinite(v) for m in result["metrics"] for k, v in m.items() if k != "health")
    measured = [m for m in result["metrics"] if "health" in m]  # "auto": epoch 1, the last
    assert measured[0]["epoch"] == 1 and measured[-1]["epoch"] == 3
    assert all(m["health"]["grad_norm"] > 0 for m in measured)
    assert result["seconds"] > 0
    state = state_from_bytes(result["checkpoint"])
    assert state.epoch == 3 and state.spec == ModelSpec.from_dict(MODEL)
    assert pickle.loads(pickle.dumps(work.run_segment)) is work.run_segment  # by reference
    pickle.dumps(result)


def test_segments_resume_bitwise_like_one_long_segment():
    straight = work.run_segment(task(n_epochs=5, health_every=1))
    first = work.run_segment(task(n_epochs=2, health_every=1))
    train.clear_cache()
    work._datasets.clear()  # as if the next segment ran in another worker
    second = work.run_segment(task(n_epochs=3, checkpoint=first["checkpoint"], seed=999,
                                   health_every=1))
    a, b = state_from_bytes(straight["checkpoint"]), state_from_bytes(second["checkpoint"])
    for name in a.params:
        assert a.params[name].tobytes() == b.params[name].tobytes()
    assert a.rng_state == b.rng_state and b.epoch == 5
    strip = [{k: v for k, v in m.items() if k != "seconds"} for m in straight["metrics"]]
    assert strip == [{k: v for k, v in m.items() if k != "seconds"}
                     for m in first["metrics"] + second["metrics"]]


def test_datasets_are_cached_per_process_by_spec_and_csv():
    work.run_segment(task(n_epochs=1))
    data = work.dataset_for(MOONS)
    assert work.dataset_for(dict(MOONS)) is data
    assert work.dataset_for({**MOONS, "seed": 5}) is not data
    text = "a,b,label\n" + "\n".join(f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(40))
    spec = DatasetSpec(kind="csv", csv_sha256=csv_sha256(text), label_column="label").to_dict()
    csv_data = work.dataset_for(spec, text)
    assert work.dataset_for(spec, text) is csv_data
    result = work.run_segment(task(dataset=spec, csv_text=text, n_epochs=1))
    assert result["status"] == "ok"


def test_diverged_segment_reports_and_keeps_the_last_good_checkpoint():
    config = TrainConfig(optimizer="sgd", learning_rate=1e3, batch_size=32).to_dict()
    bad_model = {**MODEL, "batch_norm": False}
    result = work.run_segment(task(config=config, model=bad_model, n_epochs=5))
    assert result["status"] == "diverged"
    assert "(learning rate 1000)" in result["message"]
    assert result["epoch"] == len(result["metrics"])
    assert state_from_bytes(result["checkpoint"]).epoch == result["epoch"]


def test_health_every_comes_from_the_task_or_the_environment(monkeypatch):
    def with_health(result):
        return [m["epoch"] for m in result["metrics"] if "health" in m]

    assert with_health(work.run_segment(task(n_epochs=4, health_every=2))) == [2, 4]
    assert with_health(work.run_segment(task(health_every=0))) == []
    monkeypatch.setenv("PANDA_CAVIAR_HEALTH_EVERY", "3")
    assert with_health(work.run_segment(task(n_epochs=4))) == [3]
    assert with_health(work.run_segment(task(n_epochs=4, health_every=1))) == [1, 2, 3, 4]
    monkeypatch.setenv("PANDA_CAVIAR_HEALTH_EVERY", "auto")
    assert work.health_every({}) == "auto"
    assert with_health(work.run_segment(task(n_epochs=1)))[-1:] == [1]
    monkeypatch.delenv("PANDA_CAVIAR_HEALTH_EVERY")
    assert work.health_every({}) == work.HEALTH_EVERY == "auto"
    monkeypatch.setenv("PANDA_CAVIAR_HEALTH_EVERY", "often")
    with pytest.raises(ValueError, match=r"\$PANDA_CAVIAR_HEALTH_EVERY must be an integer >= 0"):
        work.run_segment(task())
    with pytest.raises(ValueError, match="task health_every must be an integer >= 0"):
        work.run_segment(task(health_every=-1))


def test_task_errors_name_the_problem():
    with pytest.raises(ValueError, match="task is missing seed, n_epochs"):
        work.run_segment({k: v for k, v in task().items() if k not in ("seed", "n_epochs")})
    first = work.run_segment(task(n_epochs=1))
    other_model = {**MODEL, "hidden": [4]}
    with pytest.raises(ValueError, match="the checkpoint holds model"):
        work.run_segment(task(model=other_model, checkpoint=first["checkpoint"]))
    with pytest.raises(ValueError, match=r"unknown TrainConfig key\(s\) 'lr'"):
        work.run_segment(task(config={"lr": 0.1}))
