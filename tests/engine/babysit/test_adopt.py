"""Adopting a study's trial: its dataset, architecture, hyperparameters and latest checkpoint."""

from __future__ import annotations

import pytest

from engine import babysit
from engine.data import DatasetSpec, build_dataset
from engine.nn import ModelSpec, TrainConfig, new_state, state_to_bytes, train_segment
from engine.search import trial_config
from engine.storage import sessions as store
from engine.storage import studies
from engine.study.runner import trial_seed
from tests.engine.babysit.conftest import DATASET, assert_states_equal

PARAMS = {"learning_rate": 0.02, "hidden_layers": 1, "hidden_units": 8, "batch_size": 32,
          "batch_norm": False}


def make_trial(conn, *, epochs: int):
    study_id = studies.create_study(
        conn, name="moons search", space={}, sampler={}, scheduler={}, dataset=DATASET, seed=5,
        n_trials=1, workers=1,
    )
    (trial_id,) = studies.add_trials(
        conn, study_id, [{"params": PARAMS, "unit": [0.5], "target_epochs": 10}]
    )
    data = build_dataset(DatasetSpec.from_dict(DATASET))
    model_kwargs, config, _ = trial_config(PARAMS, 2, 2)
    state = new_state(ModelSpec(**model_kwargs), trial_seed(5, 0))
    if epochs:
        result = train_segment(state, TrainConfig(**config), data, epochs)
        studies.record_segment(conn, trial_id, result.metrics, state_to_bytes(result.state))
        state = result.state
    return trial_id, state, data, TrainConfig(**config)


def test_adopt_continues_the_trial_from_its_checkpoint(conn):
    trial_id, state, data, config = make_trial(conn, epochs=3)
    sid = babysit.adopt_trial(conn, trial_id)
    view = babysit.session_view(conn, sid)
    assert view["source_trial_id"] == trial_id and view["name"] == "moons search · trial 0"
    assert view["head_epoch"] == 3 and view["config"]["learning_rate"] == 0.02
    assert view["model"]["hidden"] == [8] and view["model"]["batch_norm"] is False
    nodes = store.session_nodes(conn, sid)
    assert [n["epoch"] for n in nodes] == [0, 1, 2, 3]
    assert [n["checkpoint_id"] is not None for n in nodes] == [False, False, False, True]
    trial_curve = [m["val_loss"] for m in studies.trial_metrics(conn, trial_id)]
    assert [n["val_loss"] for n in nodes[1:]] == trial_curve
    (event,) = babysit.session_events(conn, sid)
    assert event["kind"] == "adopted" and event["payload"]["trial_id"] == trial_id
    assert_states_equal(babysit.load_head_state(conn, sid), state)

    babysit.execute(conn, sid, "run", {"epochs": 2})
    expected = train_segment(state, config, data, 2).state
    assert_states_equal(babysit.load_head_state(conn, sid), expected)
    # Earlier epochs were the study's: no checkpoint kept, rebuilt by replay on a rollback
    # (tests/engine/babysit/test_replay.py).
    assert {t["epoch"] for t in babysit.session_view(conn, sid)["rollback_targets"]
            if t["rebuild"]} == {0, 1, 2}


def test_adopt_a_trial_without_checkpoint_starts_from_scratch(conn):
    trial_id, _, _, _ = make_trial(conn, epochs=0)
    sid = babysit.adopt_trial(conn, trial_id, name="fresh")
    view = babysit.session_view(conn, sid)
    assert view["head_epoch"] == 0 and view["name"] == "fresh"
    assert view["seed"] == trial_seed(5, 0)  # the initial weights the study would have used
    model_kwargs, _, _ = trial_config(PARAMS, 2, 2)
    assert_states_equal(babysit.load_head_state(conn, sid),
                        new_state(ModelSpec(**model_kwargs), trial_seed(5, 0)))
    babysit.execute(conn, sid, "run", {"epochs": 1})
    assert babysit.session_view(conn, sid)["head_epoch"] == 1


def test_adopted_session_survives_deleting_the_study(conn):
    trial_id, state, _, _ = make_trial(conn, epochs=2)
    sid = babysit.adopt_trial(conn, trial_id)
    study_id = studies.get_trial(conn, trial_id)["study_id"]
    studies.delete_study(conn, study_id)
    assert_states_equal(babysit.load_head_state(conn, sid), state)


def test_adopt_unknown_trial(conn):
    with pytest.raises(LookupError, match="no trial with id=42"):
        babysit.adopt_trial(conn, 42)
