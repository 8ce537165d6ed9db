"""A study stored before a sampler's default changed resumes as it began: a grid at its end
points (before cell centres), a gp with the results' mean as its prior mean (before the
pessimistic prior); a new study gets today's default written."""

from __future__ import annotations

import json

from engine.search import Space, sampler_from_dict
from engine.storage import studies as store
from engine.storage.db import connect

SPACE = {"params": {"learning_rate": {"type": "float", "low": 1e-5, "high": 1.0,
                                      "scale": "log"}}, "fixed": {"n_epochs": 2}}
OLD_GRID = {"kind": "grid", "points_per_axis": 2, "max_grid_size": 10_000, "shuffle": False}


def new(conn, sampler: dict) -> int:
    return store.create_study(
        conn, name="g", space=SPACE, sampler=sampler,
        scheduler={"kind": "full_budget", "n_epochs": 2}, dataset={"kind": "moons"}, seed=1,
        n_trials=2, workers=1)


def learning_rates(study: dict) -> list[float]:
    sampler = sampler_from_dict(study["sampler"])
    return sorted(p["learning_rate"] for p in sampler.sample(Space.from_dict(study["space"])))


def test_a_grid_stored_without_ends_reads_back_with_its_old_end_points(db_path):
    conn = connect(db_path)
    study_id = new(conn, {"kind": "grid", "points_per_axis": 2})
    # what a study created before the change holds: the same JSON with no "ends" at all
    conn.execute("UPDATE studies SET sampler_json = ? WHERE id = ?",
                 (json.dumps(OLD_GRID), study_id))
    study = store.get_study(conn, study_id)
    assert study["sampler"]["ends"] is True
    assert learning_rates(study) == [1e-5, 1.0]


def test_a_new_grid_without_ends_is_stored_at_cell_centres(db_path):
    conn = connect(db_path)
    study = store.get_study(conn, new(conn, dict(OLD_GRID)))
    stored = json.loads(conn.execute("SELECT sampler_json FROM studies WHERE id = ?",
                                     (study["id"],)).fetchone()[0])
    assert stored["ends"] is False and study["sampler"]["ends"] is False
    low, high = learning_rates(study)
    assert abs(low - 10 ** -3.75) < 1e-9 and abs(high - 10 ** -1.25) < 1e-9


def test_a_gp_stored_without_prior_mean_reads_back_with_the_mean(db_path):
    conn = connect(db_path)
    study_id = new(conn, {"kind": "gp"})
    old = {"kind": "gp", "n_startup": 10, "min_observations": None,
           "length_scale_prior": False}  # what a gp study from before the setting holds
    conn.execute("UPDATE studies SET sampler_json = ? WHERE id = ?",
                 (json.dumps(old), study_id))
    study = store.get_study(conn, study_id)
    assert study["sampler"] == {**old, "prior_mean": "mean"}
    assert sampler_from_dict(study["sampler"]).prior_mean == "mean"


def test_a_new_gp_without_prior_mean_is_stored_pessimistic(db_path):
    conn = connect(db_path)
    study = store.get_study(conn, new(conn, {"kind": "gp", "n_startup": 5}))
    stored = json.loads(conn.execute("SELECT sampler_json FROM studies WHERE id = ?",
                                     (study["id"],)).fetchone()[0])
    assert stored == {"kind": "gp", "n_startup": 5, "prior_mean": "pessimistic"}
    assert sampler_from_dict(study["sampler"]).prior_mean == "pessimistic"
    explicit = store.get_study(conn, new(conn, {"kind": "gp", "prior_mean": "mean"}))
    assert explicit["sampler"]["prior_mean"] == "mean"


def test_other_samplers_are_read_back_as_written(db_path):
    conn = connect(db_path)
    study = store.get_study(conn, new(conn, {"kind": "random"}))
    assert study["sampler"] == {"kind": "random"}
