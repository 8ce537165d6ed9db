"""Rolling back into an adopted trial's own history at once: its epochs rebuilt by replay."""

from __future__ import annotations

import pytest

from engine import babysit
from engine.babysit.commands import validate
from engine.data import DatasetSpec, build_dataset
from engine.nn import ModelSpec, TrainConfig, new_state, state_to_bytes, train_segment
from engine.search import trial_config
from engine.storage import sessions as store
from engine.storage import studies
from engine.study.runner import trial_seed
from tests.engine.babysit.conftest import DATASET, assert_states_equal
from tests.engine.babysit.test_adopt import PARAMS, make_trial


def targets(conn, sid) -> dict[int, dict]:
    return {t["epoch"]: t for t in babysit.session_view(conn, sid)["rollback_targets"]}


def trial_state_at(epoch: int):
    """The trial's weights after ``epoch`` epochs, trained here as the study trained it."""
    model_kwargs, config, _ = trial_config(PARAMS, 2, 2)
    state = new_state(ModelSpec(**model_kwargs), trial_seed(5, 0))
    data = build_dataset(DatasetSpec.from_dict(DATASET))
    return train_segment(state, TrainConfig(**config), data, epoch).state if epoch else state


def test_an_adopted_trials_epochs_are_rollback_targets_before_any_new_epoch(conn):
    """It used to say 'Train an epoch first': only the head had a checkpoint."""
    trial_id, _, _, _ = make_trial(conn, epochs=4)
    sid = babysit.adopt_trial(conn, trial_id)
    found = targets(conn, sid)
    assert sorted(found) == [0, 1, 2, 3]  # not 4: the head
    assert all(t["rebuild"] and t["on_lineage"] for t in found.values())
    assert found[2]["val_loss"] == studies.trial_metrics(conn, trial_id)[1]["val_loss"]
    validate(conn, sid, "rollback", {"epoch": 2})  # the UI's check accepts it


def test_rolling_back_rebuilds_the_trials_exact_weights_and_goes_on(conn):
    trial_id, _, data, config = make_trial(conn, epochs=4)
    sid = babysit.adopt_trial(conn, trial_id)
    babysit.execute(conn, sid, "rollback", {"epoch": 2})
    view = babysit.session_view(conn, sid)
    assert view["head_epoch"] == 2 and view["branch"] == 1
    assert_states_equal(babysit.load_head_state(conn, sid), trial_state_at(2))
    rebuilt = store.get_node(conn, view["head_node_id"])
    assert rebuilt["checkpoint_id"] is not None  # kept now: a plain target from here on
    babysit.execute(conn, sid, "run", {"epochs": 1})
    expected = train_segment(trial_state_at(2), config, data, 1).state
    assert_states_equal(babysit.load_head_state(conn, sid), expected)
    # epoch 0 too: the trial's initial weights
    babysit.execute(conn, sid, "rollback", {"epoch": 0})
    assert_states_equal(babysit.load_head_state(conn, sid), trial_state_at(0))


def test_a_trial_whose_first_epoch_replay_does_not_give_offers_only_epoch_0(conn):
    """As a stacked run leaves it (float32 rounding at epoch 1, then drift): its earlier
    epochs were offered as targets and every rollback to one was refused by the runner."""
    study_id = studies.create_study(
        conn, name="other seed", space={}, sampler={}, scheduler={}, dataset=DATASET, seed=5,
        n_trials=1, workers=1,
    )
    (trial_id,) = studies.add_trials(
        conn, study_id, [{"params": PARAMS, "unit": [0.5], "target_epochs": 10}])
    model_kwargs, config, _ = trial_config(PARAMS, 2, 2)
    data = build_dataset(DatasetSpec.from_dict(DATASET))
    # trained from other weights than its seed gives: its replay differs from epoch 1 on
    result = train_segment(new_state(ModelSpec(**model_kwargs), 999), TrainConfig(**config),
                           data, 3)
    studies.record_segment(conn, trial_id, result.metrics, state_to_bytes(result.state))
    sid = babysit.adopt_trial(conn, trial_id)
    # only epoch 0 is rebuilt: the initial weights of the trial's seed, which need no replay
    assert [e for e, t in targets(conn, sid).items() if t["rebuild"]] == [0]
    with pytest.raises(ValueError):
        validate(conn, sid, "rollback", {"epoch": 2})
    view = babysit.session_view(conn, sid)
    assert view["head_epoch"] == 3 and view["branch"] == 0  # nothing changed
    babysit.execute(conn, sid, "rollback", {"epoch": 0})
    view = babysit.session_view(conn, sid)
    assert view["head_epoch"] == 0 and view["branch"] == 1
    assert_states_equal(babysit.load_head_state(conn, sid), trial_state_at(0))


def test_a_history_that_replay_does_not_reproduce_is_refused_with_both_numbers(conn):
    trial_id, _, _, _ = make_trial(conn, epochs=4)
    sid = babysit.adopt_trial(conn, trial_id)
    node = targets(conn, sid)[2]["node_id"]
    conn.execute("UPDATE session_nodes SET train_loss = 9.0 WHERE id = ?", (node,))  # forged
    with pytest.raises(ValueError, match=r"epoch 2 of the adopted trial cannot be rebuilt: "
                                         r"replaying epoch 2 .* gives train_loss=.*, the trial "
                                         r"recorded 9.0"):
        babysit.execute(conn, sid, "rollback", {"epoch": 2})
    view = babysit.session_view(conn, sid)
    assert view["head_epoch"] == 4 and view["branch"] == 0  # nothing changed
    assert store.get_node(conn, node)["checkpoint_id"] is None


def test_a_session_from_scratch_has_no_replayed_targets(conn, make_session):
    sid = make_session()
    assert babysit.session_view(conn, sid)["rollback_targets"] == []
    with pytest.raises(ValueError, match="already the head"):
        validate(conn, sid, "rollback", {"epoch": 0})


def test_the_runner_rebuilds_before_it_takes_the_rollback_or_rejects_it(conn):
    """Through send and the detached runner: it replays outside the transaction that takes the
    intent; a history that replay does not reproduce ends as a 'rejected' event saying why."""
    from tests.engine.babysit.test_runner import stop_process, wait_for

    trial_id, _, _, _ = make_trial(conn, epochs=3)
    sid = babysit.adopt_trial(conn, trial_id)
    babysit.send(conn, sid, "rollback", epoch=1)
    pid = wait_for(lambda: babysit.session_view(conn, sid)["runner"], 10, "a runner")["pid"]
    try:
        wait_for(lambda: babysit.session_view(conn, sid)["branch"] == 1, 60, "the rollback")
        assert_states_equal(babysit.load_head_state(conn, sid), trial_state_at(1))
        node = targets(conn, sid)[2]["node_id"]  # on the abandoned branch 0, still rebuildable
        conn.execute("UPDATE session_nodes SET val_loss = 9.0 WHERE id = ?", (node,))  # forged
        babysit.send(conn, sid, "rollback", node_id=node)
        wait_for(lambda: babysit.session_events(conn, sid)[-1]["kind"] == "rejected", 60,
                 "the refusal")
        message = babysit.session_events(conn, sid)[-1]["payload"]["message"]
        assert "epoch 2 of the adopted trial cannot be rebuilt" in message
        assert "val_loss" in message and "9.0" in message
        assert babysit.session_view(conn, sid)["head_epoch"] == 1
    finally:
        stop_process(pid)
