"""How much each searched parameter explains a study's score, and advice in plain words.

Importance is the permutation importance of a random forest (scikit-learn): a forest learns the
score from the trials' unit-cube points (each parameter on its own scale), then each parameter's
column is shuffled and the drop in the forest's R^2 is that parameter's importance, shown as a
share of the total. Why this and not fANOVA: it is in scikit-learn (no forest-partition algebra
of our own), it works the same for floats, ints and choices, and it reads in one sentence ("how
much worse the score is predicted without this parameter"). Like fANOVA it spreads credit
between correlated parameters, which independent samplers keep rare.

``advice`` turns the data into sentences that name their evidence: the best trials sit at a
range boundary (with the wider range to offer), a parameter does not matter (with the value to
fix it at), and how many epochs pruning saved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

MIN_TRIALS = 8
TREES = 32
REPEATS = 3
EVAL_ROWS = 256  # permutation measured on at most this many trials (1,000 trials: ~4x less work)
UNIMPORTANT = 0.03  # a share below this, over enough trials: "does not matter"
EDGE = 0.1  # unit distance from a bound that counts as "at the boundary"


def _scored(trials: list[dict], scores: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray]:
    rows = [(t["unit"], scores[t["number"]]) for t in trials
            if scores.get(t["number"]) is not None and math.isfinite(scores[t["number"]])]
    if not rows:
        return np.zeros((0, 0)), np.zeros(0)
    return np.asarray([r[0] for r in rows], float), np.asarray([r[1] for r in rows], float)


def importance(trials: list[dict], names: list[str], scores: Mapping[int, float],
               *, seed: int = 0) -> dict | None:
    """``{"method", "shares": {name: share in [0, 1], summing to 1 (or all 0)}, "r2", "n"}``
    from the trials with a score (``scores``: {number: score}); None below ``MIN_TRIALS``."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    X, y = _scored(trials, scores)
    if len(y) < MIN_TRIALS or X.shape[1] != len(names) or not names:
        return None
    forest = RandomForestRegressor(n_estimators=TREES, min_samples_leaf=2, max_depth=12,
                                   random_state=seed, n_jobs=1).fit(X, y)
    if np.ptp(y) == 0:
        raw = np.zeros(len(names))
    else:
        rows = np.random.default_rng(seed).permutation(len(y))[:EVAL_ROWS]
        raw = permutation_importance(forest, X[rows], y[rows], n_repeats=REPEATS,
                                     random_state=seed, n_jobs=1).importances_mean
    raw = np.clip(np.nan_to_num(raw), 0.0, None)
    total = raw.sum()
    shares = raw / total if total > 0 else raw
    return {"method": "permutation importance of a random forest (scikit-learn)",
            "shares": {n: float(s) for n, s in zip(names, shares)},
            "r2": float(forest.score(X, y)), "n": int(len(y))}


def _widen(dim: dict, side: str) -> dict:
    low, high, scale = dim["low"], dim["high"], dim.get("scale", "linear")
    if scale == "log" and low > 0:
        span = math.log10(high) - math.log10(low)
        factor = 10 ** (span / 2)
        new = {"low": low / factor} if side == "low" else {"high": high * factor}
    else:
        span = high - low
        new = {"low": low - span / 2} if side == "low" else {"high": high + span / 2}
    out = {**dim, **new}
    if dim.get("type") == "int":
        out["low"], out["high"] = math.floor(out["low"]), math.ceil(out["high"])
    return out


def advice(study: dict, trials: list[dict], scores: Mapping[int, float],
           shares: Mapping[str, float] | None, *, maximize: bool = True) -> list[dict]:
    """Plain-words advice, each ``{"kind", "text", "action": (kind, payload) | None}``."""
    out: list[dict] = []
    dims = study["space"].get("params", {})
    names = list(dims)
    have = [t for t in trials if scores.get(t["number"]) is not None]
    have.sort(key=lambda t: -scores[t["number"]] if maximize else scores[t["number"]])
    top = have[:max(3, len(have) // 10)] if len(have) >= MIN_TRIALS else []
    for i, name in enumerate(names):
        dim = dims[name]
        if dim.get("type") not in ("float", "int") or not top or len(top[0]["unit"]) != len(names):
            continue
        for side, near in (("low", lambda u: u <= EDGE), ("high", lambda u: u >= 1 - EDGE)):
            at_edge = [t for t in top if near(t["unit"][i])]
            if len(at_edge) * 3 >= len(top) * 2:
                wider = _widen(dim, side)
                out.append({"kind": "boundary", "text": (
                    f"{len(at_edge)} of the best {len(top)} trials sit at the {side} end of "
                    f"{name} (within {EDGE:.0%} of {dim[side]:g}): the best value may lie "
                    f"beyond it. Widen {name} to {wider['low']:g}..{wider['high']:g}?"),
                    "action": ("set_space", {"params": {name: wider}})})
    if shares and len(have) >= 2 * MIN_TRIALS:
        best = have[0]["params"] if have else {}
        for name, share in shares.items():
            if share < UNIMPORTANT and name in best:
                out.append({"kind": "unimportant", "text": (
                    f"{name} explains {share:.0%} of the score's variation across {len(have)} "
                    f"trials: it hardly matters here. Fix it at the best trial's "
                    f"{best[name]!r} and search the rest?"),
                    "action": ("set_space", {"fix": {name: best[name]}})})
    pruned = [t for t in trials if t["state"] == "pruned"]
    if pruned:
        saved = sum(max(0, t["target_epochs"] - t["epochs_done"]) for t in pruned)
        full = sum(t["target_epochs"] for t in trials) or 1
        out.append({"kind": "pruning", "text": (
            f"Pruning stopped {len(pruned)} trial(s) early and saved {saved:,} epochs, "
            f"{saved / full:.0%} of what training every trial to its budget would take."),
            "action": None})
    return out


# The facade's names (``engine.study.parameter_importance`` / ``importance_advice``): the
# package's attribute ``importance`` is this module once it is imported.
parameter_importance, importance_advice = importance, advice
