"""Stacked work units in the runner: real tiny trainings on moons, stacked and not, compared."""

from __future__ import annotations

import re

import pytest

from engine.run.stacked_work import run_stacked_segment
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study import tell
from engine.study.facade import new_study
from engine.study.stacking import stack_key
from tests.engine.study.helpers import run_fake

LR = {"type": "float", "low": 1e-3, "high": 0.3, "scale": "log"}
FIXED = {"hidden_layers": 1, "hidden_units": 8, "batch_size": 32}
MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}


def make(db_path, scheduler, n_trials, fixed=FIXED) -> int:
    return new_study(db_path, name="stacked", space={"params": {"learning_rate": LR},
                     "fixed": fixed}, sampler={"kind": "random"}, scheduler=scheduler,
                     dataset=MOONS, n_trials=n_trials, seed=4, workers=2)


def run(db_path, study_id, sizes, **options) -> str:
    from engine.run.work import run_segment

    def stack_fn(task):
        sizes.append(len(task["members"]))
        return run_stacked_segment(task)

    return run_fake(db_path, study_id, work_fn=run_segment, stack_fn=stack_fn,
                    max_segment_epochs=2, **options)


def curves(db_path, study_id) -> dict[int, tuple]:
    conn = connect(db_path)
    out = {t["number"]: (t["state"], [(m["epoch"], m["val_acc"], m["train_loss"])
                                      for m in store.trial_metrics(conn, t["id"])])
           for t in store.list_trials(conn, study_id)}
    conn.close()
    return out


def assert_same(a: dict, b: dict, *, same_decisions: bool) -> None:
    """Equal curves (up to float32 rounding) on the epochs both trained; with same_decisions
    also the same states and lengths (ASHA's decisions depend on the order results arrive)."""
    assert a.keys() == b.keys()
    for n in a:
        if same_decisions:
            assert a[n][0] == b[n][0], n
            assert [e for e, _, _ in a[n][1]] == [e for e, _, _ in b[n][1]], n
        for (_, acc1, loss1), (_, acc2, loss2) in zip(a[n][1], b[n][1]):
            assert abs(acc1 - acc2) <= 0.02 and abs(loss1 - loss2) <= 1e-3 * (1 + loss1), n


FULL = {"kind": "full_budget", "n_epochs": 4}
ASHA = {"kind": "successive_halving", "min_epochs": 1, "max_epochs": 9, "eta": 3}


@pytest.mark.parametrize("scheduler, n_trials", [(FULL, 6), (ASHA, 9)])
def test_stacked_study_trains_each_trial_as_alone(tmp_path, scheduler, n_trials):
    """Every epoch of every trial once, in order; the curves those of the unstacked study (float32
    rounding apart); ASHA's pruned members leave at their rung (which trials ASHA promotes
    depends on the order results arrive, so only full budget must decide the same)."""
    sizes: list[int] = []
    stacked = make(tmp_path / "a.db", scheduler, n_trials)
    assert run(tmp_path / "a.db", stacked, sizes, stack=True) == "complete"
    alone = make(tmp_path / "b.db", scheduler, n_trials)
    assert run(tmp_path / "b.db", alone, [], stack=False) == "complete"
    got, want = curves(tmp_path / "a.db", stacked), curves(tmp_path / "b.db", alone)
    assert_same(got, want, same_decisions=scheduler is FULL)
    assert sizes and max(sizes) >= 2  # stacks were trained
    for _, rows in got.values():
        assert [e for e, _, _ in rows] == list(range(1, len(rows) + 1))
    if scheduler is ASHA:
        assert {len(rows) for _, rows in got.values()} <= {1, 3, 9}
        assert any(state == "pruned" for state, _ in got.values())


def test_population_trains_as_one_stack(tmp_path):
    pbt = {"kind": "pbt", "interval": 2, "n_rounds": 3}
    sizes: list[int] = []
    study_id = make(tmp_path / "p.db", pbt, 4)
    assert run(tmp_path / "p.db", study_id, sizes, stack=True) == "complete"
    got = curves(tmp_path / "p.db", study_id)
    assert all(state == "complete" and [e for e, _, _ in rows] == list(range(1, 7))
               for state, rows in got.values())
    conn = connect(tmp_path / "p.db")
    assert store.trial_lineage(conn, study_id)  # exploits copied members' checkpoints
    # the population of 4 trains as stacks shared between the 2 workers, round after round
    assert len(sizes) >= 3 and set(sizes) == {2}


def test_a_runner_dying_mid_stack_loses_and_repeats_no_epoch(tmp_path, monkeypatch):
    """The runner dies after committing the first member of a stack (as kill -9 would between
    two commits); a new runner re-trains only the others, and every epoch is there once."""
    study_id = make(tmp_path / "k.db", FULL, 4)
    real = tell.record
    calls = []

    def dying(runner, conn, result, run_):
        calls.append(run_.number)
        if len(calls) == 2:
            raise SystemExit("killed")
        return real(runner, conn, result, run_)

    monkeypatch.setattr(tell, "record", dying)
    with pytest.raises(SystemExit):
        run(tmp_path / "k.db", study_id, [], stack=True)
    monkeypatch.setattr(tell, "record", real)
    conn = connect(tmp_path / "k.db")
    conn.execute("UPDATE runners SET stopped_at = CURRENT_TIMESTAMP")  # the dead one's slot
    conn.close()
    assert run(tmp_path / "k.db", study_id, [], stack=True) == "complete"
    for state, rows in curves(tmp_path / "k.db", study_id).values():
        assert state == "complete" and [e for e, _, _ in rows] == [1, 2, 3, 4]


def test_stack_key_buckets_widths_by_powers_of_two():
    def run_(width, bs=32):
        from engine.study.trials import TrialRun

        model = {"hidden": [width], "activation": "relu", "batch_norm": True}
        return TrialRun(0, 0, "waiting", 0, 4, 0, model, {"optimizer": "adam",
                                                          "batch_size": bs}, 0)

    assert stack_key(run_(20)) == stack_key(run_(32)) != stack_key(run_(33))
    assert stack_key(run_(20)) != stack_key(run_(20, bs=64))


def test_stacking_pays_while_batch_rows_times_the_bucketed_width_stay_small():
    from engine.study.stacking import PAYS_ELEMENTS, pays

    assert PAYS_ELEMENTS == 8192
    assert pays({"hidden": [64, 64]}, {"batch_size": 128})  # 128 x 64 = 8,192
    assert pays({"hidden": [65]}, {"batch_size": 64})  # padded to 128: 8,192
    assert not pays({"hidden": [129]}, {"batch_size": 64})  # padded to 256: 16,384
    assert not pays({"hidden": [8, 300]}, {"batch_size": 32})  # the widest layer counts


@pytest.mark.parametrize("units, batch, stacked", [(8, 32, True), (256, 64, False)])
def test_the_runner_stacks_by_default_only_where_it_pays(tmp_path, monkeypatch, units, batch,
                                                         stacked):
    """No option, no environment: the real work unit stacks small trials and trains wide ones
    (batch x width above the rule) alone; $PANDA_CAVIAR_STACK=0 turns stacking off."""
    from concurrent.futures import ThreadPoolExecutor

    import engine.run.stacked_work as stacked_work
    from engine.study.runner import run_study

    monkeypatch.delenv("PANDA_CAVIAR_STACK", raising=False)
    sizes: list[int] = []
    real = stacked_work.run_stacked_segment

    def recording(task):
        sizes.append(len(task["members"]))
        return real(task)

    monkeypatch.setattr(stacked_work, "run_stacked_segment", recording)
    fixed = {"hidden_layers": 1, "hidden_units": units, "batch_size": batch}
    pool = lambda study: ThreadPoolExecutor(study["workers"])  # noqa: E731
    study_id = make(tmp_path / "d.db", FULL, 4, fixed=fixed)
    assert run_study(tmp_path / "d.db", study_id, executor_factory=pool,
                     max_segment_epochs=2) == "complete"
    assert bool(sizes) is stacked and all(n >= 2 for n in sizes)
    for state, rows in curves(tmp_path / "d.db", study_id).values():
        assert state == "complete" and [e for e, _, _ in rows] == [1, 2, 3, 4]
    if stacked:
        monkeypatch.setenv("PANDA_CAVIAR_STACK", "0")
        sizes.clear()
        off = make(tmp_path / "off.db", FULL, 4, fixed=fixed)
        assert run_study(tmp_path / "off.db", off, executor_factory=pool) == "complete"
        assert sizes == []


def test_a_group_larger_than_the_cache_limit_trains_as_several_stacks(tmp_path):
    """40 wide trials (256 units, batch 32: stacking pays) on 2 workers: a worker's share (20)
    is above the cache limit, so the runner trains units of at most that limit."""
    from engine.search import trial_config
    from engine.study.stacking import cache_limit, pays

    fixed = {"hidden_layers": 1, "hidden_units": 256, "batch_size": 32}
    model, config = trial_config(fixed, 2, 2)[:2]
    cap = cache_limit(model, config)
    assert pays(model, config) and 2 <= cap < 20
    sizes: list[int] = []
    study_id = make(tmp_path / "d.db", {"kind": "full_budget", "n_epochs": 1}, 40, fixed=fixed)
    assert run(tmp_path / "d.db", study_id, sizes) == "complete"
    assert max(sizes) == cap and sum(sizes) <= 40  # the first units full, none above the cap
    assert all(state == "complete" for state, _ in curves(tmp_path / "d.db", study_id).values())


def test_the_runner_says_which_trials_train_as_one_stack(tmp_path, caplog):
    from engine.study.stacking import _numbers

    assert _numbers([7, 0, 2, 1, 5, 8]) == "0-2, 5, 7-8" and _numbers([3]) == "3"
    sizes: list[int] = []
    study_id = make(tmp_path / "d.db", FULL, 6)
    with caplog.at_level("INFO", logger="engine"):
        assert run(tmp_path / "d.db", study_id, sizes) == "complete"
    said = [re.fullmatch(r"study \d+: trials ([\d, -]+) train as one stack \((\d+) members, "
                         r"\d+ epochs?\)", r.getMessage())
            for r in caplog.records if "train as one stack" in r.getMessage()]
    assert all(said) and sizes and max(sizes) > 1
    assert [int(m[2]) for m in said] == sizes  # one line per stacked unit, in order
    assert said[0][1] == "0-2"  # the first unit: the first three trials asked


def test_the_stacking_plan_caps_its_largest_stack_at_the_cache_limit():
    from engine.search import trial_config
    from engine.study.stacking import cache_limit, stacking_plan

    small = trial_config({"hidden_layers": 2, "hidden_units": 16, "batch_size": 32}, 2, 2)[:2]
    digits = trial_config({"hidden_layers": 1, "hidden_units": 64, "batch_size": 64}, 64, 10)[:2]
    assert stacking_plan([small] * 64, learns=False, workers=1, on=True)["largest"] == 64
    plan = stacking_plan([digits] * 64, learns=False, workers=1, on=True)
    assert plan["largest"] == cache_limit(*digits) < 64
    assert f"stacks of up to {plan['largest']} per worker" in plan["text"]


def test_the_stacking_plan_caps_at_the_cache_limit_of_the_datasets_shape():
    """The plan sizes its members from the dataset, as the runner does: 2,000 inputs make each
    member's first layer large, so its stacks are smaller than on two inputs."""
    from engine.search import trial_config
    from engine.study.stacking import cache_limit, stacking_plan_for

    fixed = {"hidden_layers": 1, "hidden_units": 64, "batch_size": 64}
    space = {"params": {}, "fixed": fixed}
    plans = {n: stacking_plan_for(space, {"kind": "random"}, FULL, n_trials=64, seed=0,
                                  workers=1, n_features=n, n_classes=10, on=True)
             for n in (2, 2000)}
    assert plans[2000]["largest"] == cache_limit(*trial_config(fixed, 2000, 10)[:2])
    assert plans[2000]["largest"] < plans[2]["largest"] == cache_limit(
        *trial_config(fixed, 2, 10)[:2])


def test_the_stacking_plan_says_which_trials_stack_and_why():
    from engine.search import trial_config
    from engine.study.stacking import stacking_plan, stacking_plan_for

    small = trial_config({"hidden_layers": 1, "hidden_units": 16, "batch_size": 32}, 2, 2)[:2]
    wide = trial_config({"hidden_layers": 1, "hidden_units": 256, "batch_size": 64}, 2, 2)[:2]
    plan = stacking_plan([small] * 6, learns=False, workers=2, on=True)
    assert (plan["stacked"], plan["total"], plan["largest"]) == (6, 6, 3)
    assert plan["text"].startswith(
        "Runs stacked: All trials (batch size × widest hidden layer ≤ 8,192)")
    assert "stacks of up to 3 per worker" in plan["text"]
    plan = stacking_plan([small, small, wide], learns=True, workers=1, on=True)
    assert plan["stacked"] == 2 and "2 of 3 trials" in plan["text"]
    assert "the other 1 train alone" in plan["text"] and "one trial at a time" in plan["text"]
    plan = stacking_plan([wide], learns=False, workers=1, on=True)
    assert plan["stacked"] == 0 and "64 × 256 = 16,384" in plan["text"]
    assert stacking_plan([small], learns=False, workers=1, on=False)["text"].startswith(
        "Stacking is off")
    assert "population trains as stacks" in stacking_plan(
        [small] * 4, learns=False, workers=2, population=True, on=True)["text"]
    space = {"params": {"hidden_units": {"type": "int", "low": 8, "high": 512, "scale": "log"}},
             "fixed": {"batch_size": 64}}
    plan = stacking_plan_for(space, {"kind": "random"}, FULL, n_trials=200, seed=0, workers=2,
                             n_features=2, n_classes=2, on=True)
    assert plan["total"] == 64 and 0 < plan["stacked"] < 64  # 8..128 stack, 129..512 do not
    assert plan["largest"] == 64  # min(64, 200 trials / 2 workers)


def test_an_action_while_a_stack_trains_reaches_its_members(db_path):
    """A study action applied while a stacked unit is in flight (here: stop trial 0). The
    runner re-reads the trials in flight after an action and crashed on a stack ('Stack' object
    has no attribute 'id'): every stop, add or edit during a stacked study killed it."""
    import time

    from engine.run.work import run_segment
    from engine.study.actions import act

    study_id = new_study(db_path, name="stacked", space={"params": {"learning_rate": LR},
                         "fixed": FIXED}, sampler={"kind": "random"}, scheduler=FULL,
                         dataset=MOONS, n_trials=2, seed=4, workers=1)
    sizes = []

    def stack_fn(task):
        sizes.append(len(task["members"]))
        if len(sizes) == 1:
            act(db_path, study_id, "stop_trial", {"trial": 0})  # queued: the runner is alive
            time.sleep(1.0)  # the runner obeys the intent while this unit is in flight
        return run_stacked_segment(task)

    assert run_fake(db_path, study_id, work_fn=run_segment, stack_fn=stack_fn,
                    max_segment_epochs=2) == "complete"
    assert sizes[0] == 2
    states = {n: state for n, (state, _) in curves(db_path, study_id).items()}
    assert states == {0: "cancelled", 1: "complete"}
    assert [e for e, _, _ in curves(db_path, study_id)[1][1]] == [1, 2, 3, 4]
