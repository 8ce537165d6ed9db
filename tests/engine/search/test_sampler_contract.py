"""The sampler contract, run over every registered sampler kind (a new kind cannot escape it).

In the spirit of Optuna's ``testing/pytest_samplers.py``: each kind is asked with histories that
hold finished trials (scored, pruned, diverged, failed) and pending ones, and must answer points
inside the unit cube that depend only on (settings, space, history, rng).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.search import (
    SAMPLERS,
    Choice,
    Float,
    History,
    Int,
    Objective,
    RandomSampler,
    Sampler,
    SequenceSampler,
    Space,
    TrialRecord,
    ask_rng,
    default_space,
    sampler_from_dict,
)
from tests.engine.search.strategies import spaces


def _parent_trials(space: Space, n: int = 30) -> list[dict]:
    units = RandomSampler().sample_unit(space, n, seed=99)
    return [{"params": space.params_from_unit(u), "score": float(-np.sum((u - 0.3) ** 2))}
            for u in units]


#: kinds whose constructor needs arguments; every other kind must build with none.
EXAMPLES: dict[str, Callable[[Space], Sampler]] = {
    "coarse_to_fine": lambda space: SAMPLERS["coarse_to_fine"](_parent_trials(space), top_k=4),
    "grid": lambda space: SAMPLERS["grid"](points_per_axis=3),
}
KINDS = sorted(SAMPLERS)


def make(kind: str, space: Space) -> Sampler:
    if kind in EXAMPLES:
        return EXAMPLES[kind](space)
    return SAMPLERS[kind]()


def scored_history(space: Space, n_finished: int, n_pending: int, seed: int = 0,
                   objective: Objective | None = None) -> History:
    """Random trials: the finished ones scored by closeness to u = 0.7 (over 3 epochs), one of
    them pruned at epoch 1, one diverged, one failed; then some pending ones."""
    rng = np.random.default_rng(seed)
    objective = objective or Objective("val_loss")
    trials = []
    for k in range(n_finished + n_pending):
        u = rng.random(space.n_dims)
        quality = float(np.sum((u - 0.7) ** 2))
        if k >= n_finished:
            state, scores = ("running" if k % 2 else "waiting"), {1: quality + 1.0}
        elif k % 7 == 3:
            state, scores = "pruned", {1: quality + 1.0}
        elif k % 11 == 5:
            state, scores = "diverged", {}
        elif k % 13 == 6:
            state, scores = "failed", {}
        else:
            state, scores = "complete", {1: quality + 1, 2: quality + 0.5, 3: quality}
        trials.append(TrialRecord(k, tuple(u), space.params_from_unit(u), state, scores, 3))
    return History(tuple(trials), objective, seed=seed, n_trials=n_finished + n_pending + 8)


def ask_all(sampler: Sampler, space: Space, history: History, n: int) -> list:
    """Ask ``n`` trials one after another, each recorded as pending (as the runner does)."""
    points = []
    for _ in range(n):
        u = sampler.ask(space, history, ask_rng(history.seed, history.number))
        if u is None:
            break
        points.append(u)
        history = history.with_trial(
            TrialRecord(history.number, tuple(u.tolist()), space.params_from_unit(u)))
    return points


def test_every_kind_can_be_built() -> None:
    for kind, cls in SAMPLERS.items():
        required = [p for p in inspect.signature(cls).parameters.values()
                    if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
        assert kind in EXAMPLES or not required, f"add an example for {kind} to EXAMPLES"
        assert make(kind, default_space()).kind == kind


def test_registry_names_the_class_kind() -> None:
    assert all(cls.kind == kind and issubclass(cls, Sampler) for kind, cls in SAMPLERS.items())


def test_every_sampler_in_the_package_is_registered_and_under_contract() -> None:
    """A sampler class in a module that ``engine.search`` does not import would be missing from
    ``SAMPLERS`` (so from ``KINDS`` and these tests): every module of the package is imported
    here and each class with a ``kind`` of its own must already be in ``KINDS``."""
    import importlib
    import pkgutil

    import engine.search.samplers as package

    found = set()
    for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        for obj in vars(importlib.import_module(module.name)).values():
            if isinstance(obj, type) and issubclass(obj, Sampler) and "kind" in vars(obj):
                found.add(obj.kind)
    assert found and found <= set(KINDS), f"not under contract: {sorted(found - set(KINDS))}"


@pytest.mark.parametrize("kind", KINDS)
class TestSamplerContract:
    @settings(max_examples=25, deadline=None)
    @given(space=spaces(), n_finished=st.integers(0, 12), n_pending=st.integers(0, 4),
           seed=st.integers(0, 2**32 - 1))
    def test_answers_lie_in_the_cube(self, kind, space, n_finished, n_pending, seed) -> None:
        sampler = make(kind, space)
        history = scored_history(space, n_finished, n_pending, seed)
        for u in ask_all(sampler, space, history, 3):
            assert u.shape == (space.n_dims,) and u.dtype == np.float64
            assert np.all((u >= 0) & (u <= 1))
            params = space.params_from_unit(u)
            assert set(params) == set(space.dimension_names) | set(space.fixed)
            space.unit_from_params(params)  # every value inside its dimension

    def test_answer_depends_only_on_its_arguments(self, kind) -> None:
        space = default_space()
        a, b = scored_history(space, 20, 2, seed=1), scored_history(space, 9, 0, seed=2)
        sampler = make(kind, space)
        first = sampler.ask(space, a, ask_rng(a.seed, a.number))
        sampler.ask(space, b, ask_rng(b.seed, b.number))  # whatever it caches from b ...
        again = sampler.ask(space, a, ask_rng(a.seed, a.number))  # ... changes nothing for a
        rebuilt = sampler_from_dict(json.loads(json.dumps(sampler.to_dict())))
        fresh = rebuilt.ask(space, a, ask_rng(a.seed, a.number))
        np.testing.assert_array_equal(first, again)
        np.testing.assert_array_equal(first, fresh)

    def test_tell_and_describe(self, kind) -> None:
        space = default_space()
        history = scored_history(space, 12, 1)
        sampler = make(kind, space)
        for trial in history.finished():
            sampler.tell(space, history, trial)
        belief = sampler.describe(space, history)
        assert belief is None or isinstance(json.loads(json.dumps(belief)), dict)

    def test_maximised_objectives_are_read_from_the_history(self, kind) -> None:
        """The same trials with scores negated and the objective flipped are the same search."""
        space = default_space()
        low = scored_history(space, 15, 1, seed=3, objective=Objective("val_loss"))
        high = History(
            tuple(TrialRecord(t.number, t.unit, t.params, t.state,
                              {e: -s for e, s in t.scores.items()}, t.target_epochs)
                  for t in low.trials),
            Objective("val_acc"), seed=low.seed, n_trials=low.n_trials)
        sampler = make(kind, space)
        np.testing.assert_allclose(
            sampler.ask(space, low, ask_rng(low.seed, low.number)),
            sampler.ask(space, high, ask_rng(high.seed, high.number)))

    def test_batch_is_seeded(self, kind) -> None:
        space = default_space()
        sampler = make(kind, space)
        np.testing.assert_array_equal(sampler.sample_unit(space, 8, seed=7),
                                      sampler.sample_unit(space, 8, seed=7))
        assert not np.array_equal(sampler.sample_unit(space, 8, seed=1),
                                  sampler.sample_unit(space, 8, seed=2))
        assert len(sampler.sample(space, 8, seed=7)) == 8

    def test_json_round_trip(self, kind) -> None:
        space = default_space()
        sampler = make(kind, space)
        again = sampler_from_dict(json.loads(json.dumps(sampler.to_dict())))
        assert type(again) is type(sampler) and again == sampler

    def test_sequences_ask_their_rows(self, kind) -> None:
        """A sampler that does not learn asks row k of its batch for sampled trial k, and
        trials added by hand do not use up its rows."""
        space = default_space()
        sampler = make(kind, space)
        if sampler.learns:
            assert not isinstance(sampler, SequenceSampler)
            return
        history = scored_history(space, 0, 0)
        history = History(history.trials, history.objective, seed=5, n_trials=6)
        asked = ask_all(sampler, space, history, 6)
        np.testing.assert_array_equal(np.stack(asked), sampler.sample_unit(space, 6, seed=5))
        by_hand = TrialRecord(0, tuple([0.5] * space.n_dims), {}, "complete", {1: 0.1}, 1, "user")
        with_hand = History((by_hand,), history.objective, seed=5, n_trials=6)
        np.testing.assert_array_equal(
            sampler.ask(space, with_hand, ask_rng(5, 1)), asked[0])

    def test_bad_arguments(self, kind) -> None:
        space = default_space()
        sampler = make(kind, space)
        with pytest.raises(ValueError, match=r"n must be an integer >= 0, got n=-1"):
            sampler.sample_unit(space, -1, seed=0)
        with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got seed=1.5"):
            sampler.sample_unit(space, 2, seed=1.5)

    def test_spaces_of_every_kind_of_dimension(self, kind) -> None:
        space = Space({"learning_rate": Float(1e-5, 1.0, "log"), "beta1": Float(0.8, 0.999,
                      "one_minus_log"), "hidden_units": Int(8, 256, "log"),
                       "optimizer": Choice(["sgd", "adam"]), "batch_norm": Choice([True, False])})
        sampler = make(kind, space)
        points = ask_all(sampler, space, scored_history(space, 25, 3), 5)
        assert points and all(np.all((u >= 0) & (u <= 1)) for u in points)
