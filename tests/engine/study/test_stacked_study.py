"""Stacked work units in the runner: real tiny trainings on moons, stacked and not, compared."""

from __future__ import annotations

import pytest

from engine.run.stacked_work import run_stacked_segment
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study import runner as runner_module
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
    real = runner_module.StudyRunner._record
    calls = []

    def dying(self, conn, result, run_):
        calls.append(run_.number)
        if len(calls) == 2:
            raise SystemExit("killed")
        return real(self, conn, result, run_)

    monkeypatch.setattr(runner_module.StudyRunner, "_record", dying)
    with pytest.raises(SystemExit):
        run(tmp_path / "k.db", study_id, [], stack=True)
    monkeypatch.setattr(runner_module.StudyRunner, "_record", real)
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
