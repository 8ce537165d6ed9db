"""Pure rules: which checkpoints the budget keeps, when the babysitter acts, setting checks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.babysit.policy import (
    auto_trigger,
    best_node,
    check_auto,
    check_retention,
    give_up,
    lowered_rate,
    retained_nodes,
    rising_epochs,
)

RETENTION = {"max_params_keep_all": 1000, "keep_last": 4, "keep_every": 5}


def chain(val_losses, branch=0, start_epoch=0, first_id=1, parent=None):
    """Nodes of one branch with the given val losses (None allowed), each with a checkpoint."""
    nodes = []
    for i, v in enumerate(val_losses):
        node_id = first_id + i
        nodes.append({
            "id": node_id, "parent_id": parent, "branch": branch, "epoch": start_epoch + i,
            "checkpoint_id": 100 + node_id, "val_loss": v,
        })
        parent = node_id
    return nodes


def test_small_models_keep_everything():
    nodes = chain([None] + [1.0] * 30)
    assert retained_nodes(nodes, n_params=1000, retention=RETENTION) == {n["id"] for n in nodes}


def test_large_models_keep_root_recent_thinned_and_best():
    losses = [None] + [1.0 - 0.01 * e for e in range(1, 12)] + [2.0] * 18  # best at epoch 11
    nodes = chain(losses)
    kept = retained_nodes(nodes, n_params=10**6, retention=RETENTION, protected=[nodes[3]["id"]])
    epochs = sorted(n["epoch"] for n in nodes if n["id"] in kept)
    # the last 4; then every 5th (ages 4-7), every 10th (ages 8-15), every 20th (ages 16-31)
    assert epochs == [0, 3, 11, 20, 25, 26, 27, 28, 29]


def test_knob_changes_are_kept():
    nodes = chain([None] + [1.0] * 40)
    for n in nodes:
        n["config"] = {"learning_rate": 0.1 if n["epoch"] < 13 else 0.01}
    kept = retained_nodes(nodes, n_params=10**6, retention=RETENTION)
    assert 13 in {n["epoch"] for n in nodes if n["id"] in kept}


def _promised(epoch: int, last: int, keep_last: int, keep_every: int) -> bool:
    age = last - epoch
    return age < keep_last or epoch % (keep_every * 2 ** int(math.log2(age / keep_last))) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(0.01, 10.0)), min_size=1, max_size=300),
    st.integers(1, 10), st.integers(1, 7),
)
def test_budget_law_promised_epochs_are_kept_and_the_count_grows_like_a_log(
        losses, keep_last, keep_every):
    retention = {"max_params_keep_all": 10, "keep_last": keep_last, "keep_every": keep_every}
    nodes = chain(losses)
    kept = retained_nodes(nodes, n_params=11, retention=retention)
    last = max(n["epoch"] for n in nodes)
    for n in nodes:
        if _promised(n["epoch"], last, keep_last, keep_every) or n["parent_id"] is None:
            assert n["id"] in kept
    best = best_node(nodes)
    assert best is None or best["id"] in kept
    levels = 2 + (math.log2(last / keep_last) if last > keep_last else 0)
    assert len(kept) <= 2 + keep_last + levels * (keep_last / keep_every + 1)
    # Pruning is applied after every epoch, and a pruned blob is gone for good: nothing dropped
    # at one epoch may be wanted at a later one.
    if len(nodes) > 1:
        earlier = retained_nodes(nodes[:-1], n_params=11, retention=retention)
        assert kept - {nodes[-1]["id"]} <= earlier


def test_best_node_skips_pruned_and_missing():
    nodes = chain([None, 0.5, 0.2, 0.3])
    assert best_node(nodes)["epoch"] == 2
    nodes[2]["checkpoint_id"] = None
    assert best_node(nodes)["epoch"] == 3
    assert best_node(chain([None])) is None


def test_rising_epochs_counts_the_run_ending_at_the_head():
    assert rising_epochs(chain([None, 1.0, 0.8, 0.9, 1.0, 1.1])) == 3
    assert rising_epochs(chain([None, 1.0, 0.8])) == 0
    assert rising_epochs(chain([None, 1.0])) == 0
    assert rising_epochs(chain([1.0, 1.0, 1.0])) == 0  # equal is not a rise


def test_auto_trigger_respects_enabled_patience_and_divergence():
    rising = chain([None, 1.0, 1.1, 1.2])
    on = {"enabled": True, "patience": 2, "factor": 0.5}
    assert "rose for 2" in auto_trigger(rising, on, diverged=False)
    assert auto_trigger(rising, {**on, "patience": 3}, diverged=False) is None
    assert auto_trigger(rising, {**on, "enabled": False}, diverged=True) is None
    assert "non-finite" in auto_trigger(chain([None]), on, diverged=True)


@pytest.mark.parametrize(
    ("auto", "match"),
    [
        ({"enabled": "yes"}, "enabled must be true or false"),
        ({"patience": 0}, "patience must be an integer >= 1, got patience=0"),
        ({"factor": 1.5}, r"factor must be a number in \(0, 1\), got factor=1.5"),
        ({"speed": 1}, "unknown auto-babysitter field"),
        ({"min_learning_rate": 0}, "min_learning_rate must be a number > 0, got "
                                   "min_learning_rate=0"),
        ({"max_rollbacks": 0}, "max_rollbacks must be an integer from 1 to 1000"),
        ({"tolerance": 1.0}, r"tolerance must be a number in \[0, 1\), got tolerance=1.0"),
    ],
)
def test_check_auto_messages(auto, match):
    with pytest.raises(ValueError, match=match):
        check_auto(auto)


def test_check_retention_messages():
    assert check_retention({"keep_last": 3}) == {"keep_last": 3}
    with pytest.raises(ValueError, match="keep_every must be an integer >= 1, got keep_every=0"):
        check_retention({"keep_every": 0})
    with pytest.raises(ValueError, match="unknown retention field"):
        check_retention({"keep": 1})


def test_rises_within_the_tolerance_are_noise():
    noisy = chain([None, 1.0, 1.01, 1.015, 1.02])
    assert rising_epochs(noisy) == 3
    assert rising_epochs(noisy, 0.02) == 0
    assert rising_epochs(chain([None, 1.0, 1.05, 1.1]), 0.02) == 2
    on = {"enabled": True, "patience": 2, "factor": 0.5, "tolerance": 0.02}
    assert auto_trigger(noisy, {**on, "tolerance": 0.0}, diverged=False) is not None
    assert auto_trigger(noisy, on, diverged=False) is None


def test_give_up_at_the_cap_or_the_floor():
    auto = {"max_rollbacks": 3, "min_learning_rate": 1e-6, "factor": 0.5}
    assert give_up(auto, learning_rate=1e-3, actions=2) is None
    assert "max_rollbacks=3" in give_up(auto, learning_rate=1e-3, actions=3)
    assert "floor" in give_up(auto, learning_rate=1e-6, actions=0)
    assert lowered_rate(auto, 1e-3) == 5e-4
    assert lowered_rate(auto, 1.5e-6) == 1e-6  # never below the floor


def test_exploding_head_and_the_calm_node_before_it():
    from engine.babysit.policy import calm_node, exploding_head

    def node(i, norm, blob=True):
        return {"id": i, "epoch": i, "checkpoint_id": i if blob else None, "val_loss": 1.0,
                "health": None if norm is None else {"grad_norm": norm}}

    calm = [node(0, None), node(1, 1.0), node(2, 2.0)]
    assert exploding_head(calm) is None and calm_node(calm) is None
    rising = [*calm, node(3, 500.0, blob=False), node(4, 5e4)]
    assert exploding_head(rising) == "exploding gradients at epoch 4 (norm 5e4)"
    assert calm_node(rising)["id"] == 2  # epoch 3 is already 500x the first norm
    assert exploding_head(rising[:4]) == "exploding gradients at epoch 3 (norm 500)"
    healed = [*rising, node(5, 3.0)]
    assert exploding_head(healed) is None and calm_node(healed)["id"] == 2
    at_once = [node(0, None), node(1, 1e5)]
    assert calm_node(at_once)["id"] == 0 and exploding_head(at_once).startswith("exploding")


def health_node(i, health=None, blob=True, train_loss=1.0, lr=0.1):
    return {"id": i, "epoch": i, "checkpoint_id": i if blob else None, "val_loss": 1.0,
            "train_loss": train_loss, "config": {"learning_rate": lr}, "health": health}


def test_auto_act_reads_the_heads_flags_in_order():
    from engine.babysit.policy import auto_act

    on = {"enabled": True, "patience": 3}

    def dead(d2, norm=1.0, wrong=0.0):
        return {"grad_norm": norm, "grad_norm_1": 1.0, "grad_norm_2": 1.0, "grad_norm_3": 1.0,
                "dead_1": 0.1, "dead_2": d2, "confident_wrong": wrong}

    path = [health_node(0), health_node(1, dead(0.1)), health_node(2, dead(0.3)),
            health_node(3, dead(0.6), blob=False), health_node(4, dead(0.75))]
    act = auto_act(path, on, diverged=False)
    assert (act.rule, act.reason, act.target["id"], act.rate) == (
        "dead_relus", "75% dead ReLUs in layer 2 at epoch 4", 2, "lower")
    assert auto_act(path, {**on, "on_flags": False}, diverged=False) is None
    # dead from the first epoch: back to the root
    assert auto_act([path[0], health_node(1, dead(0.9))], on, diverged=False).target["id"] == 0
    # exploding gradients come first; a saturated softmax after dead ReLUs
    path[-1]["health"] = dead(0.75, norm=5e3, wrong=0.5)
    assert auto_act(path, on, diverged=False).rule == "exploding_gradients"
    path[-1]["health"] = dead(0.1, wrong=0.5)
    path[-2]["health"] = dead(0.1, wrong=0.3)
    act = auto_act(path, on, diverged=False)
    assert (act.rule, act.reason, act.target["id"]) == (
        "softmax_saturated", "softmax saturated at epoch 4: 50% confident and wrong", 2)
    assert auto_act(path, on, diverged=True).rule == "diverged"


def test_no_learning_raises_the_rate_once_per_flat_stretch():
    from engine.babysit.policy import auto_act, flat_head, raised_rate

    on = {"enabled": True, "patience": 3, "factor": 0.5}
    flat = [health_node(0, train_loss=None)] + [
        health_node(i, train_loss=0.693 + 1e-4 * i, lr=1e-5) for i in range(1, 6)]
    act = auto_act(flat, on, diverged=False)
    assert (act.rule, act.target, act.rate) == ("no_learning", None, "raise")
    assert act.reason == "no learning: loss flat at 0.693 for 5 epochs at learning rate 1e-5"
    assert raised_rate(on, 1e-5) == 2e-5
    assert flat_head(flat[:-1]) is None  # 4 epochs are not enough
    moved = [*flat[:-1], health_node(5, train_loss=0.6, lr=1e-5)]
    assert flat_head(moved) is None
    # after the raise, epochs at the new rate start a new stretch
    raised = [*flat, health_node(6, train_loss=0.693, lr=2e-5)]
    assert flat_head(raised) is None
    assert auto_act(flat, {**on, "on_flags": False}, diverged=False) is None
    # a model that learnt and now sits on a plateau is not "not learning"
    plateau = [health_node(0, train_loss=None), health_node(1, train_loss=1.0, lr=1e-3)] + [
        health_node(i, train_loss=0.02, lr=1e-3) for i in range(2, 7)]
    assert flat_head(plateau) is None and flat_head(plateau[:1] + plateau[2:]) is not None


def test_a_raise_is_not_stopped_by_the_floor_but_by_the_cap():
    auto = {"max_rollbacks": 3, "min_learning_rate": 1e-6, "factor": 0.5}
    assert give_up(auto, learning_rate=1e-6, actions=0, lowering=False) is None
    assert "max_rollbacks=3" in give_up(auto, learning_rate=1e-6, actions=3, lowering=False)
