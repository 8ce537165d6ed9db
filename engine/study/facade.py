"""The study facade that the dashboard and the CLI call: create, start, stop, resume, zoom, export.

Everything a study needs is validated before anything is stored or runs
(``engine.study.planning``): the space, the sampler, the scheduler, the objective and the dataset
go through their ``from_dict``, the dataset is built once (so a bad CSV is reported now, naming
its row or column). Errors are ``ValueError`` naming the field. A new study holds no trials: its
runner asks its sampler for them one at a time, as results come in (``engine.study.runner``).

Starting a study never trains in the caller: it spawns the study's detached runner
(``engine.run.launch``), the one writer of results. Stop and resume are intents to that runner,
or, when none is alive, direct updates (nobody else is writing then).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time

from engine.run.execution import default_workers
from engine.run.launch import ensure_study_runner
from engine.storage import runners
from engine.storage import studies as store
from engine.storage.db import Db, db_path_of, opened, transaction
from engine.study.export import export_metrics_csv as _export_metrics
from engine.study.export import export_trials_csv as _export_trials
from engine.study.planning import MAX_WORKERS, dataset_for_study, integer, validate_study


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
    objective: dict | None = None,
    epoch_budget: int | None = None,
) -> int:
    """Validate and store the study (status ``queued``, no trials yet); return its id.

    The budget is ``n_trials`` and/or ``epoch_budget`` (epochs in all; no trial is asked once
    the epochs trained and reserved by trials in progress reach it). ``objective`` is what the
    study optimises (default ``{"metric": "val_acc"}``): samplers, schedulers and zooms read it.
    """
    seed = integer(seed, "seed", 0, 2**32 - 1)
    workers = default_workers() if workers is None else integer(workers, "workers", 1, MAX_WORKERS)
    if not isinstance(executor_address, str):
        raise ValueError(f"executor_address must be a string, got {executor_address!r}")
    executor_address = executor_address.strip()
    if executor_address and ":" not in executor_address:
        raise ValueError(
            "executor_address must be a Dask scheduler address like tcp://127.0.0.1:8786,"
            f" got executor_address={executor_address!r}"
        )
    name = (name or "").strip() or f"study {time.strftime('%Y-%m-%d %H:%M:%S')}"
    with opened(db) as conn:
        dataset, data = dataset_for_study(conn, dataset, csv_text)
        plan = validate_study(
            space, sampler, scheduler, n_trials=n_trials, epoch_budget=epoch_budget,
            objective=objective, n_features=data.X_train.shape[1], n_classes=data.n_classes,
        )
        return store.create_study(
            conn, name=name, space=plan.space, sampler=plan.sampler, scheduler=plan.scheduler,
            dataset=dataset, seed=seed, n_trials=plan.n_trials, workers=workers,
            executor_address=executor_address, parent_id=parent_id, box=box,
            objective=plan.objective, epoch_budget=plan.epoch_budget,
        )


def start_study(db: Db, study_id: int) -> int | None:
    """Spawn the study's detached runner; its pid, or None if one is alive or the study is
    complete."""
    with opened(db) as conn:
        study = store.get_study(conn, study_id)
        if study["runner_alive"] or study["stored_status"] == "complete":
            return None
        runners.take_intents(conn, "study", study_id)  # no runner: anything pending is stale
        store.set_study_status(conn, study_id, "running", "")  # before the runner can finish
        return ensure_study_runner(conn, study_id, db_path_of(conn))


def resume_study(db: Db, study_id: int) -> int | None:
    """Continue a stopped/interrupted study from its checkpoints (spawns a runner), or cancel a
    stop that a live runner has not finished yet. The new pid, or None."""
    with opened(db) as conn:
        with transaction(conn):
            alive = runners.runner_alive(conn, "study", study_id)
            if alive:
                runners.post_intent(conn, "study", study_id, "resume")
        return None if alive else start_study(conn, study_id)


def stop_study(db: Db, study_id: int) -> str:
    """Ask the runner to stop (running trials are checkpointed and marked ``stopped`` within a
    segment): ``"stopping"``. With no live runner, mark it stopped at once: ``"stopped"``.
    A complete study is left alone (its status is returned)."""
    with opened(db) as conn:
        study = store.get_study(conn, study_id)
        if study["stored_status"] == "complete":
            return "complete"
        with transaction(conn):
            if runners.runner_alive(conn, "study", study_id):
                store.set_study_status(conn, study_id, "stopping")
                runners.post_intent(conn, "study", study_id, "stop")
                return "stopping"
            store.stop_unattended(conn, study_id)
        return "stopped"


def _trial_scores(conn: sqlite3.Connection, study: dict) -> list[tuple[dict, float]]:
    """``(trial, score)`` of every trial with a finite score: its best over its epochs by the
    study's objective (so a ``val_error`` study ranks its lowest error first)."""
    from engine.search import Objective
    from engine.storage.ranking import trial_scores

    objective = Objective.from_dict(study["objective"])
    # one SQLite aggregate (stored metrics are finite), not 50,000 epoch dicts in Python
    best = trial_scores(conn, study["id"], objective.metric, "best",
                        maximize=objective.maximize)
    return [(t, best[t["number"]]) for t in store.list_trials(conn, study["id"])
            if t["number"] in best]


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
    the chosen trials (ranked by the parent's objective, each by its best epoch): ``top_k``
    trials, ``top_fraction`` of the scored ones, or exactly ``trial_numbers`` (default
    top_k=5). A parent that is itself a zoom study zooms inside its own box (at least
    ``shrink`` of that box's width), so each zoom goes finer.

    Returns ``{"sampler": dict, "box": Box.to_dict(), "volume": float, "chosen": [numbers],
    "n_scored": int, "space": the parent's space dict}``; the pages preview and draw it, and
    ``coarse_to_fine_child`` launches it.
    """
    from engine.search import CoarseToFineSampler, Objective, Space

    with opened(db) as conn:
        parent = store.get_study(conn, parent_id)
        scored = _trial_scores(conn, parent)
    objective = Objective.from_dict(parent["objective"])
    if not scored:
        raise ValueError(f"study {parent_id} has no trial with a score yet ({objective.label})")
    if sum(x is not None for x in (top_k, top_fraction, trial_numbers)) > 1:
        raise ValueError("give one of top_k, top_fraction or trial_numbers")
    n_scored = len(scored)
    if trial_numbers is not None:
        wanted = set(trial_numbers)
        scored = [(t, s) for t, s in scored if t["number"] in wanted]
        if not scored:
            raise ValueError(f"none of trials {sorted(wanted)} of study {parent_id} has a score")
        top_k = len(scored)
    if top_fraction is not None:
        if not isinstance(top_fraction, float | int) or not 0 < top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], got top_fraction={top_fraction!r}")
        top_k = max(1, round(top_fraction * len(scored)))
    top_k = integer(5 if top_k is None else top_k, "top_k", 1)
    sampler = CoarseToFineSampler(
        [{"params": t["params"], "score": s} for t, s in scored],
        top_k=top_k, shrink=shrink, objective=objective.to_dict(), within=parent["box"],
    )
    box = sampler.box(Space.from_dict(parent["space"]))
    ranked = sorted(scored, key=lambda ts: (objective.loss(ts[1]), ts[0]["number"]))[:top_k]
    return {
        "sampler": sampler.to_dict(),
        "box": box.to_dict(),
        "volume": box.volume,
        "chosen": sorted(t["number"] for t, _ in ranked),
        "n_scored": n_scored,
        "space": parent["space"],
    }


def child_seed(conn: sqlite3.Connection, parent: dict) -> int:
    """A seed for a new child of ``parent`` that no study in the database has: derived from the
    parent's seed and id (the same parent and database give the same seed), moved on past any
    seed taken. ``parent seed + 1`` would repeat another study's trials (same initial weights,
    same Sobol rows) whenever seeds 0, 1, 2 ... were used by hand."""
    used = store.study_seeds(conn)
    digest = hashlib.sha256(f"child of {parent['id']} seed {parent['seed']}".encode()).digest()
    seed = int.from_bytes(digest[:4], "big")
    while seed in used:
        seed = (seed + 1) % 2**32
    return seed


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
    it records its parent and its box. ``seed`` None: ``child_seed`` (one no other study has)."""
    with opened(db) as conn:
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
            epoch_budget=parent["epoch_budget"] if n_trials is None else None,
            objective=parent["objective"],
            seed=child_seed(conn, parent) if seed is None else seed,
            workers=parent["workers"],
            executor_address=parent["executor_address"],
            parent_id=parent_id,
            box=plan["box"],
        )


def export_trials_csv(db: Db, study_id: int) -> str:
    """The study's trials as CSV text (formula-like cells escaped)."""
    with opened(db) as conn:
        return _export_trials(conn, study_id)


def export_metrics_csv(db: Db, study_id: int) -> str:
    """Every trial epoch of the study as CSV text."""
    with opened(db) as conn:
        return _export_metrics(conn, study_id)
