"""A study's settings, validated before anything is stored or runs.

The space, the sampler, the scheduler and the dataset go through their ``from_dict``; the dataset
is built once (so a bad CSV is reported now, naming its row or column). Errors are
``ValueError`` naming the field, the value and what would be valid.

The trial budget comes from the scheduler: ``full_budget`` trains ``n_epochs`` (taken from the
space when the scheduler dict leaves it out; a space that *searches* ``n_epochs`` gives each
trial its own budget), ``successive_halving`` trains up to ``max_epochs``, ``pbt`` trains
``interval * n_rounds``. The space's fixed ``n_epochs`` is set to that budget so stored params
say what was run. Population-based training also needs a population (``n_trials >= 2``) and at
least one searched training knob to perturb.

The budget of a study is a number of trials (``n_trials``; a grid's default is every point)
and/or a number of epochs in all (``epoch_budget``). Nothing is sampled here: the runner asks
its sampler one trial at a time (``engine.study.runner``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from engine.storage.blobs import get_upload, save_upload

MAX_TRIALS = 100_000
MAX_WORKERS = 1024  # local processes or Dask workers a study may ask for


def integer(value: object, field: str, low: int, high: int | None = None) -> int:
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        valid = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{field} must be an integer {valid}, got {field}={value!r}")
    return int(value)


def budget(scheduler: dict, space) -> tuple[dict, object]:
    """Fill in a full-budget scheduler's ``n_epochs`` from the space; build the scheduler."""
    from engine.search import KNOBS, scheduler_from_dict

    if not isinstance(scheduler, dict):
        raise ValueError(f"scheduler must be a dict with a 'kind', got scheduler={scheduler!r}")
    scheduler = dict(scheduler)
    searched = "n_epochs" in space.params
    if scheduler.get("kind") == "full_budget" and "n_epochs" not in scheduler:
        scheduler["n_epochs"] = (
            space.params["n_epochs"].high if searched
            else space.fixed.get("n_epochs", KNOBS["n_epochs"].default)
        )
    built = scheduler_from_dict(scheduler)
    if searched and built.kind != "full_budget":
        raise ValueError(
            f"n_epochs is searched in the space, but the {built.kind} scheduler sets the budget"
            " (max_epochs); fix n_epochs in the space or use the full_budget scheduler"
        )
    return built.to_dict(), built


def dataset_for_study(conn: sqlite3.Connection, dataset: dict, csv_text: str | None):
    """Validate the dataset spec, store a given CSV, build it once; (spec dict, Dataset)."""
    from engine.data import DatasetSpec, build_dataset, csv_sha256

    if not isinstance(dataset, dict):
        raise ValueError(f"dataset must be a DatasetSpec dict, got dataset={dataset!r}")
    dataset = dict(dataset)
    if csv_text is not None:
        digest = csv_sha256(csv_text)
        if dataset.get("csv_sha256") and dataset["csv_sha256"] != digest:
            raise ValueError(
                f"dataset csv_sha256={dataset['csv_sha256']!r} does not match the CSV text"
                f" given (sha256 {digest})"
            )
        dataset["csv_sha256"] = digest
    spec = DatasetSpec.from_dict(dataset)
    if spec.kind == "csv":
        if csv_text is None:
            csv_text = get_upload(conn, spec.csv_sha256)
        save_upload(conn, spec.name or "upload.csv", csv_text)
    return spec.to_dict(), build_dataset(spec, csv_text)


@dataclass(frozen=True)
class StudyPlan:
    """A study's validated settings: what ``new_study`` stores and its runner rebuilds."""

    space: dict  # with n_epochs fixed to the budget unless searched
    sampler: dict
    scheduler: dict
    objective: dict
    n_trials: int | None  # None: no trial budget
    epoch_budget: int | None  # None: no budget in total epochs


def validate_study(
    space: dict | None, sampler: dict, scheduler: dict, *, n_trials: int | None,
    epoch_budget: int | None = None, objective: dict | None = None,
    n_features: int, n_classes: int,
) -> StudyPlan:
    """Check everything a study needs before it is stored: ``ValueError`` naming the field.

    ``space`` None is the demo space; ``n_trials`` None takes the sampler's default (a grid:
    every point) and, without one, needs an ``epoch_budget``. A point of the space's corners and
    a few inside go through ``trial_config``, so a knob combination the engine refuses is
    reported now, not by a failing trial."""
    from engine.search import Objective, Space, default_space, sampler_from_dict

    space_obj = default_space() if space is None else Space.from_dict(space)
    scheduler, built = budget(scheduler, space_obj)
    if "n_epochs" not in space_obj.params:
        space_obj = Space(space_obj.params, {**space_obj.fixed, "n_epochs": built.max_epochs})
    if not isinstance(sampler, dict):
        raise ValueError(f"sampler must be a dict with a 'kind', got sampler={sampler!r}")
    sampler_obj = sampler_from_dict(sampler)
    sampler_obj.validate(space_obj)
    objective_obj = Objective.from_dict(objective)
    if n_trials is None:
        n_trials = sampler_obj.default_n(space_obj)
    if n_trials is not None:
        n_trials = integer(n_trials, "n_trials", 1, MAX_TRIALS)
    if epoch_budget is not None:
        epoch_budget = integer(epoch_budget, "epoch_budget", 1, MAX_TRIALS * 10_000)
    if n_trials is None and epoch_budget is None:
        raise ValueError(
            f"a {sampler_obj.kind} study needs a budget: give n_trials (a number of trials) "
            "and/or epoch_budget (epochs in all)"
        )
    if getattr(sampler_obj, "prefix_stable", True) is False and n_trials is None:
        raise ValueError(
            f"the {sampler_obj.kind} sampler ({sampler.get('method', '')}) draws the whole study "
            "at once: give n_trials"
        )
    if built.kind == "pbt":
        from engine.search import pbt

        pbt.check_space(space_obj)
        if n_trials is None or n_trials < 2:
            raise ValueError(
                "n_trials must be >= 2 for population-based training (the bottom of the "
                f"population copies the top), got n_trials={n_trials}"
            )
    _check_points(space_obj, n_features, n_classes)
    return StudyPlan(space_obj.to_dict(), sampler_obj.to_dict(), scheduler,
                     objective_obj.to_dict(), n_trials, epoch_budget)


SIZE_KNOBS = ("hidden_units", "hidden_layers", "batch_size")


def _largest(space, params: dict) -> dict:
    """``params`` with the largest width, depth and batch size the space allows."""
    from engine.search.dimensions import Choice

    out = dict(params)
    for name in SIZE_KNOBS:
        dim = space.params.get(name)
        if isinstance(dim, Choice):
            numbers = [o for o in dim.options if isinstance(o, int) and not isinstance(o, bool)]
            if numbers:
                out[name] = max(numbers)
        elif dim is not None:
            out[name] = int(dim.high)
    return out


def _check_points(space, n_features: int, n_classes: int) -> None:
    """The space's corners and centre through ``trial_config`` (errors name the knob), and the
    largest model it allows through ``engine.nn.size.check_size`` (the limit and the size)."""
    from engine.nn import ModelSpec
    from engine.nn.size import check_size
    from engine.search import trial_config

    d = space.n_dims
    for u in (np.zeros(d), np.full(d, 0.5), np.ones(d)):
        trial_config(space.params_from_unit(u), n_features, n_classes)
    params = _largest(space, space.params_from_unit(np.ones(d)))
    model_kwargs, config, _ = trial_config(params, n_features, n_classes)
    optimizer = "adam" if "optimizer" in space.params else config["optimizer"]  # most slots
    check_size(ModelSpec(**model_kwargs), config["batch_size"], optimizer)


def plan_trials(
    space: dict, sampler: dict, scheduler: dict, n_trials: int | None, seed: int,
    n_features: int, n_classes: int, *, epoch_budget: int | None = None,
    objective: dict | None = None, preview: int | None = None,
) -> tuple[dict, dict, list[dict]]:
    """Validate, then the first trials the study would ask with no results yet (the
    designer's preview; ``preview`` caps how many, default every one of ``n_trials``):
    ``(space dict with the budget fixed, scheduler dict, trials)``."""
    from engine.search import Space, sampler_from_dict, scheduler_from_dict, trial_config

    plan = validate_study(space, sampler, scheduler, n_trials=n_trials,
                          epoch_budget=epoch_budget, objective=objective,
                          n_features=n_features, n_classes=n_classes)
    space_obj, built = Space.from_dict(plan.space), scheduler_from_dict(plan.scheduler)
    count = preview if preview is not None else plan.n_trials
    if count is None:
        count = 16
    if plan.n_trials is not None:
        count = min(count, plan.n_trials)
    units = sampler_from_dict(plan.sampler).sample_unit(space_obj, count, seed)
    trials = []
    for u in units:
        params = space_obj.params_from_unit(u)
        _, _, n_epochs = trial_config(params, n_features, n_classes)
        trials.append({"params": params, "unit": u.tolist(),
                       "target_epochs": built.target_epochs(n_epochs)})
    return plan.space, plan.scheduler, trials
