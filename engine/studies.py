"""The study facade that the dashboard and the CLI call: create, start, stop, resume, zoom, export.

Everything a study needs is validated here, before anything is stored or runs: the space, the
sampler, the scheduler and the dataset go through their ``from_dict``, the dataset is built once
(so a bad CSV is reported now, naming its row or column), and every sampled trial goes through
``trial_config``. Errors are ``ValueError`` naming the field.

The trial budget comes from the scheduler: ``full_budget`` trains ``n_epochs`` (taken from the
space when the scheduler dict leaves it out; a space that *searches* ``n_epochs`` gives each
trial its own budget), ``successive_halving`` trains up to ``max_epochs``, ``pbt`` trains
``interval * n_rounds``. The space's fixed ``n_epochs`` is set to that budget so stored params
say what was run. Population-based training also needs a population (``n_trials >= 2``) and at
least one searched training knob to perturb; searched architecture knobs are sampled at round 0
and copied with the weights (``engine.search.pbt``).

Starting a study never trains in the caller: it spawns the study's detached runner
(``engine.launch``), the one writer of results. Stop and resume are intents to that runner, or,
when none is alive, direct updates (nobody else is writing then).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from engine.execution import default_workers
from engine.export import export_metrics_csv as _export_metrics
from engine.export import export_trials_csv as _export_trials
from engine.launch import ensure_study_runner
from engine.storage import runners
from engine.storage import studies as store
from engine.storage.blobs import get_upload, save_upload
from engine.storage.db import connect, transaction

Db = sqlite3.Connection | str | os.PathLike
MAX_TRIALS = 100_000


@contextmanager
def _open(db: Db) -> Iterator[sqlite3.Connection]:
    if isinstance(db, sqlite3.Connection):
        yield db
        return
    conn = connect(db)
    try:
        yield conn
    finally:
        conn.close()


def db_file(conn: sqlite3.Connection) -> Path:
    """The file behind a connection (what a spawned runner must open)."""
    row = conn.execute("PRAGMA database_list").fetchone()
    return Path(row["file"])


def _integer(value: object, field: str, low: int, high: int | None = None) -> int:
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        valid = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{field} must be an integer {valid}, got {field}={value!r}")
    return int(value)


def _budget(scheduler: dict, space) -> tuple[dict, object]:
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


def _dataset(conn: sqlite3.Connection, dataset: dict, csv_text: str | None):
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


def plan_trials(
    space: dict, sampler: dict, scheduler: dict, n_trials: int | None, seed: int,
    n_features: int, n_classes: int,
) -> tuple[dict, dict, list[dict]]:
    """Validate and sample: (space dict with the budget fixed, scheduler dict, trials)."""
    from engine.search import Space, default_space, sampler_from_dict, trial_config

    space_obj = default_space() if space is None else Space.from_dict(space)
    scheduler, built = _budget(scheduler, space_obj)
    if "n_epochs" not in space_obj.params:
        space_obj = Space(space_obj.params, {**space_obj.fixed, "n_epochs": built.max_epochs})
    if not isinstance(sampler, dict):
        raise ValueError(f"sampler must be a dict with a 'kind', got sampler={sampler!r}")
    sampler_obj = sampler_from_dict(sampler)
    if n_trials is None:
        n_trials = sampler_obj.default_n(space_obj)
        if n_trials is None:
            raise ValueError(f"n_trials is required for the {sampler_obj.kind} sampler")
    n_trials = _integer(n_trials, "n_trials", 1, MAX_TRIALS)
    if built.kind == "pbt":
        from engine.search import pbt

        pbt.check_space(space_obj)
        if n_trials < 2:
            raise ValueError(
                "n_trials must be >= 2 for population-based training (the bottom of the "
                f"population copies the top), got n_trials={n_trials}"
            )
    units = sampler_obj.sample_unit(space_obj, n_trials, seed)
    trials = []
    for u in units:
        params = space_obj.params_from_unit(u)
        _, _, n_epochs = trial_config(params, n_features, n_classes)
        target = n_epochs if built.kind == "full_budget" else built.max_epochs
        trials.append({"params": params, "unit": u.tolist(), "target_epochs": target})
    return space_obj.to_dict(), scheduler, trials


def new_study(
    db: Db,
    *,
    name: str | None = None,
    space: dict | None = None,
    sampler: dict,
    scheduler: dict,
    dataset: dict,
    n_trials: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    executor_address: str = "",
    csv_text: str | None = None,
    parent_id: int | None = None,
    box: dict | None = None,
) -> int:
    """Validate, sample every trial and store the study (status ``queued``); return its id."""
    seed = _integer(seed, "seed", 0, 2**32 - 1)
    workers = default_workers() if workers is None else _integer(workers, "workers", 1, 1024)
    if not isinstance(executor_address, str):
        raise ValueError(f"executor_address must be a string, got {executor_address!r}")
    executor_address = executor_address.strip()
    if executor_address and ":" not in executor_address:
        raise ValueError(
            "executor_address must be a Dask scheduler address like tcp://127.0.0.1:8786,"
            f" got executor_address={executor_address!r}"
        )
    name = (name or "").strip() or f"study {time.strftime('%Y-%m-%d %H:%M:%S')}"
    with _open(db) as conn:
        dataset, data = _dataset(conn, dataset, csv_text)
        space, scheduler, trials = plan_trials(
            space, sampler, scheduler, n_trials, seed, data.X_train.shape[1], data.n_classes
        )
        with transaction(conn):
            study_id = store.create_study(
                conn, name=name, space=space, sampler=sampler, scheduler=scheduler,
                dataset=dataset, seed=seed, n_trials=len(trials), workers=workers,
                executor_address=executor_address, parent_id=parent_id, box=box,
            )
            store.add_trials(conn, study_id, trials)
    return study_id


def start_study(db: Db, study_id: int) -> int | None:
    """Spawn the study's detached runner; its pid, or None if one is alive or nothing is left."""
    with _open(db) as conn:
        study = store.get_study(conn, study_id)
        if study["runner_alive"]:
            return None
        unfinished = sum(study["counts"][s] for s in ("waiting", "running", "stopped"))
        if unfinished == 0:
            if study["stored_status"] != "complete":
                store.set_study_status(conn, study_id, "complete")
            return None
        runners.take_intents(conn, "study", study_id)  # no runner: anything pending is stale
        store.set_study_status(conn, study_id, "running", "")  # before the runner can finish
        return ensure_study_runner(conn, study_id, db_file(conn))


def resume_study(db: Db, study_id: int) -> int | None:
    """Continue a stopped/interrupted study from its checkpoints (spawns a runner), or cancel a
    stop that a live runner has not finished yet. The new pid, or None."""
    with _open(db) as conn:
        with transaction(conn):
            alive = runners.runner_alive(conn, "study", study_id)
            if alive:
                runners.post_intent(conn, "study", study_id, "resume")
        return None if alive else start_study(conn, study_id)


def stop_study(db: Db, study_id: int) -> str:
    """Ask the runner to stop (running trials are checkpointed and marked ``stopped`` within a
    segment): ``"stopping"``. With no live runner, mark it stopped at once: ``"stopped"``.
    A complete study is left alone (its status is returned)."""
    with _open(db) as conn:
        study = store.get_study(conn, study_id)
        if study["stored_status"] == "complete":
            return "complete"
        with transaction(conn):
            if runners.runner_alive(conn, "study", study_id):
                store.set_study_status(conn, study_id, "stopping")
                runners.post_intent(conn, "study", study_id, "stop")
                return "stopping"
            conn.execute(
                "UPDATE trials SET state = 'stopped' WHERE study_id = ? AND state = 'running'",
                (study_id,),
            )
            store.set_study_status(conn, study_id, "stopped")
        return "stopped"


def zoom_plan(
    db: Db,
    parent_id: int,
    *,
    top_k: int | None = None,
    top_fraction: float | None = None,
    trial_numbers: list[int] | None = None,
    shrink: float = 0.5,
) -> dict:
    """Where a coarse-to-fine child of ``parent_id`` would sample: a box in unit space around
    the chosen trials (by best validation accuracy): ``top_k`` trials, ``top_fraction`` of the
    scored ones, or exactly ``trial_numbers`` (default top_k=5).

    Returns ``{"sampler": dict, "box": Box.to_dict(), "volume": float, "chosen": [numbers],
    "n_scored": int, "space": the parent's space dict}``; the pages preview and draw it, and
    ``coarse_to_fine_child`` launches it.
    """
    from engine.search import CoarseToFineSampler, Space

    with _open(db) as conn:
        parent = store.get_study(conn, parent_id)
        scored = [t for t in store.list_trials(conn, parent_id) if t["best_val_acc"] is not None]
    if not scored:
        raise ValueError(f"study {parent_id} has no trial with a validation score yet")
    if sum(x is not None for x in (top_k, top_fraction, trial_numbers)) > 1:
        raise ValueError("give one of top_k, top_fraction or trial_numbers")
    n_scored = len(scored)
    if trial_numbers is not None:
        wanted = set(trial_numbers)
        scored = [t for t in scored if t["number"] in wanted]
        if not scored:
            raise ValueError(
                f"none of trials {sorted(wanted)} of study {parent_id} has a validation score"
            )
        top_k = len(scored)
    if top_fraction is not None:
        if not isinstance(top_fraction, float | int) or not 0 < top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], got top_fraction={top_fraction!r}")
        top_k = max(1, round(top_fraction * len(scored)))
    top_k = _integer(5 if top_k is None else top_k, "top_k", 1)
    sampler = CoarseToFineSampler(
        [{"params": t["params"], "score": t["best_val_acc"]} for t in scored],
        top_k=top_k, shrink=shrink, maximize=True,
    )
    box = sampler.box(Space.from_dict(parent["space"]))
    ranked = sorted(scored, key=lambda t: -t["best_val_acc"])[:top_k]
    return {
        "sampler": sampler.to_dict(),
        "box": box.to_dict(),
        "volume": box.volume,
        "chosen": sorted(t["number"] for t in ranked),
        "n_scored": n_scored,
        "space": parent["space"],
    }


def coarse_to_fine_child(
    db: Db,
    parent_id: int,
    *,
    top_k: int | None = None,
    top_fraction: float | None = None,
    trial_numbers: list[int] | None = None,
    shrink: float = 0.5,
    n_trials: int | None = None,
    name: str | None = None,
    seed: int | None = None,
) -> int:
    """A new study sampling inside a box around the parent's chosen trials (see ``zoom_plan``);
    it records its parent and its box."""
    with _open(db) as conn:
        parent = store.get_study(conn, parent_id)
        plan = zoom_plan(conn, parent_id, top_k=top_k, top_fraction=top_fraction,
                         trial_numbers=trial_numbers, shrink=shrink)
        return new_study(
            conn,
            name=name or f"{parent['name']} (zoom)",
            space=parent["space"],
            sampler=plan["sampler"],
            scheduler=parent["scheduler"],
            dataset=parent["dataset"],
            n_trials=parent["n_trials"] if n_trials is None else n_trials,
            seed=parent["seed"] + 1 if seed is None else seed,
            workers=parent["workers"],
            executor_address=parent["executor_address"],
            parent_id=parent_id,
            box=plan["box"],
        )


def export_trials_csv(db: Db, study_id: int) -> str:
    """The study's trials as CSV text (formula-like cells escaped)."""
    with _open(db) as conn:
        return _export_trials(conn, study_id)


def export_metrics_csv(db: Db, study_id: int) -> str:
    """Every trial epoch of the study as CSV text."""
    with _open(db) as conn:
        return _export_metrics(conn, study_id)
