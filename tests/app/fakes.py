"""Studies written straight into a database, without training: for page tests and benchmarks.

``fake_study`` samples real trials from a real space (so params, units and axes are genuine) and
records made-up but plausible per-epoch curves through the storage API, exactly as the runner
would. No runner is involved, so the study reads as ``complete`` (or whatever ``status`` says).
"""

from __future__ import annotations

import sqlite3

import numpy as np

from engine.search import RandomSampler, Space, default_space
from engine.storage import studies as store
from engine.storage.db import transaction

DATASET = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}


def fake_curves(rng: np.random.Generator, n_epochs: int, lr: float) -> list[dict]:
    """Decreasing losses / rising accuracies whose quality depends on the learning rate."""
    quality = float(np.exp(-((np.log10(lr) + 2.0) ** 2) / 2.0))  # best near 1e-2
    epochs = np.arange(1, n_epochs + 1)
    floor = 0.05 + 0.6 * (1 - quality)
    val_loss = floor + 0.7 * np.exp(-epochs / (3 + 5 * rng.random())) + 0.02 * rng.random(n_epochs)
    train_loss = val_loss * 0.9
    val_acc = np.clip(1.0 - val_loss / 1.6, 0.0, 1.0)
    return [
        {"epoch": int(e), "train_loss": float(tl), "train_acc": float(min(1.0, va + 0.02)),
         "val_loss": float(vl), "val_acc": float(va), "learning_rate": lr, "seconds": 0.01}
        for e, tl, vl, va in zip(epochs, train_loss, val_loss, val_acc)
    ]


def fake_study(
    conn: sqlite3.Connection,
    n_trials: int = 12,
    n_epochs: int = 5,
    *,
    name: str = "fake study",
    space: Space | None = None,
    seed: int = 0,
    status: str = "complete",
    finished: int | None = None,
    parent_id: int | None = None,
    box: dict | None = None,
    dataset: dict | None = None,
    sampler: dict | None = None,
) -> int:
    """A study with ``n_trials`` trials, the first ``finished`` (default all) with ``n_epochs``
    epochs of metrics; returns its id."""
    space = space or default_space()
    rng = np.random.default_rng(seed)
    units = RandomSampler().sample_unit(space, n_trials, seed)
    space_dict = space.to_dict()
    space_dict["fixed"] = {**space_dict["fixed"], "n_epochs": n_epochs}
    finished = n_trials if finished is None else finished
    with transaction(conn):
        study_id = store.create_study(
            conn, name=name, space=space_dict, sampler=sampler or {"kind": "random"},
            scheduler={"kind": "full_budget", "n_epochs": n_epochs},
            dataset=dataset or DATASET, seed=seed, n_trials=n_trials, workers=2,
            parent_id=parent_id, box=box,
        )
        ids = store.add_trials(conn, study_id, [
            {"params": space.params_from_unit(u), "unit": u.tolist(), "target_epochs": n_epochs}
            for u in units
        ])
        rows = []
        for i, trial_id in enumerate(ids[:finished]):
            lr = space.params_from_unit(units[i]).get("learning_rate", 1e-2)
            metrics = fake_curves(rng, n_epochs, lr)
            rows += [(trial_id, m["epoch"], m["train_loss"], m["train_acc"], m["val_loss"],
                      m["val_acc"], m["learning_rate"], m["seconds"]) for m in metrics]
            best = max(m["val_acc"] for m in metrics)
            conn.execute(
                "UPDATE trials SET state = 'complete', epochs_done = ?, best_val_acc = ?,"
                " best_val_loss = ?, last_val_acc = ?, last_val_loss = ?, seconds = ?,"
                " updated_at = updated_at + ? WHERE id = ?",
                (n_epochs, best, min(m["val_loss"] for m in metrics), metrics[-1]["val_acc"],
                 metrics[-1]["val_loss"], 0.01 * n_epochs, float(i), trial_id),
            )
        conn.executemany(
            "INSERT INTO metrics (trial_id, epoch, train_loss, train_acc, val_loss, val_acc,"
            " learning_rate, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    store.set_study_status(conn, study_id, status)
    return study_id
