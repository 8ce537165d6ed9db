"""Ranking a study's trials: by their best epoch, their last epoch, or epoch k.

The study's objective (``engine.search.Objective``) says what is scored and which way is better;
the rank choice (``{"at": "best" | "last" | k}``, stored with the study) says which epoch of each
trial counts. The sampler always learns from the objective as the study was made; the ranking
is what the views and "extend the top k" use. Pure functions over plain dicts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

RANK_AT = ("best", "last")


def check_rank(rank: Mapping | None) -> dict:
    """The normalised rank choice, or ValueError naming the value and what is valid."""
    at = (rank or {}).get("at", "best")
    if isinstance(at, str) and at.strip().isdigit():
        at = int(at)
    if at in RANK_AT:
        return {"at": at}
    if isinstance(at, int) and not isinstance(at, bool) and at >= 1:
        return {"at": at}
    raise ValueError(f"rank at must be 'best', 'last' or an epoch number >= 1, got at={at!r}")


def rank_label(rank: Mapping, objective_label: str) -> str:
    """E.g. ``"maximise val_acc at the best epoch"``."""
    at = check_rank(rank)["at"]
    where = {"best": "the best epoch", "last": "the last epoch"}.get(at, f"epoch {at}")
    return f"{objective_label} at {where}"


def trial_score(objective, epochs: Iterable[Mapping], rank: Mapping) -> float | None:
    """One trial's score under the rank choice: its epochs' metrics dicts (any order)."""
    at = check_rank(rank)["at"]
    scores = {}
    for m in epochs:
        s = objective.score(m)
        if s is not None and math.isfinite(s):
            scores[int(m["epoch"])] = s
    if not scores:
        return None
    if at == "best":
        return objective.best(list(scores.values()))
    if at == "last":
        return scores[max(scores)]
    return scores.get(at)


def scores_by_trial(objective, trials: list[dict], metrics: Mapping[int, list[dict]],
                    rank: Mapping) -> dict[int, float | None]:
    """``{trial number: score or None}`` for every trial (``metrics`` by trial id)."""
    return {t["number"]: trial_score(objective, metrics.get(t["id"], ()), rank) for t in trials}


def ranked(objective, trials: list[dict], metrics: Mapping[int, list[dict]],
           rank: Mapping) -> list[tuple[dict, float]]:
    """The trials with a score, best first (ties: the lower number), with their scores."""
    scores = scores_by_trial(objective, trials, metrics, rank)
    have = [(t, scores[t["number"]]) for t in trials if scores[t["number"]] is not None]
    return sorted(have, key=lambda ts: (objective.loss(ts[1]), ts[0]["number"]))


def columns_scores(objective, metrics: Mapping[str, list], rank: Mapping) -> dict[int, float]:
    """The same scores from ``study_metrics`` columns (what the pages read): ``{number:
    score}`` for the trials that have one."""
    at = check_rank(rank)["at"]
    metric = objective.metric
    out: dict[int, float] = {}
    best = objective.maximize
    numbers, epochs = metrics["number"], metrics["epoch"]
    if metric == "val_error":
        values = [1.0 - v for v in metrics["val_acc"]]
    else:
        values = metrics[metric]
    last: dict[int, int] = {}
    for n, e, v in zip(numbers, epochs, values):
        if v is None or not math.isfinite(v):
            continue
        if at == "best":
            old = out.get(n)
            if old is None or (v > old if best else v < old):
                out[n] = v
        elif at == "last":
            if e >= last.get(n, 0):
                last[n], out[n] = e, v
        elif e == at:
            out[n] = v
    return out


def study_scores(conn, study: dict) -> dict[int, float]:
    """``{number: score}`` of the study's trials under its objective and rank choice, computed
    in SQLite (the same numbers as ``columns_scores`` over ``study_metrics``)."""
    from engine.search import Objective
    from engine.storage.ranking import trial_scores

    objective = Objective.from_dict(study["objective"])
    return trial_scores(conn, study["id"], objective.metric, check_rank(study["rank"])["at"],
                        maximize=objective.maximize)
