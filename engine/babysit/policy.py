"""Pure decisions over a session's nodes: which checkpoints to keep, when the babysitter acts.

Nodes are the dicts of :mod:`engine.storage.sessions` (``id``, ``parent_id``, ``branch``,
``epoch``, ``checkpoint_id``, ``val_loss`` ...). Nothing here touches the database, so the
rules are tested on hand-made lists.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

RETENTION_FIELDS = ("max_params_keep_all", "keep_last", "keep_every")
AUTO_FIELDS = ("enabled", "patience", "factor")


def check_retention(retention: dict) -> dict:
    """Validate a retention dict (all positive integers); return it with ints."""
    unknown = sorted(set(retention) - set(RETENTION_FIELDS))
    if unknown:
        raise ValueError(
            f"unknown retention field(s) {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(RETENTION_FIELDS)}"
        )
    out = {}
    for key, value in retention.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"retention {key} must be an integer >= 1, got {key}={value!r}")
        out[key] = int(value)
    return out


def check_auto(auto: dict) -> dict:
    """Validate the babysitter settings: ``enabled`` bool, ``patience`` int >= 1, ``factor`` in
    (0, 1). Returns a dict with only the given keys."""
    unknown = sorted(set(auto) - set(AUTO_FIELDS))
    if unknown:
        raise ValueError(
            f"unknown auto-babysitter field(s) {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(AUTO_FIELDS)}"
        )
    out = dict(auto)
    if "enabled" in out and not isinstance(out["enabled"], bool):
        raise ValueError(f"auto enabled must be true or false, got enabled={out['enabled']!r}")
    if "patience" in out:
        p = out["patience"]
        if isinstance(p, bool) or not isinstance(p, int) or p < 1:
            raise ValueError(f"auto patience must be an integer >= 1, got patience={p!r}")
    if "factor" in out:
        f = out["factor"]
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0.0 < f < 1.0:
            raise ValueError(f"auto factor must be a number in (0, 1), got factor={f!r}")
        out["factor"] = float(f)
    return out


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def best_node(nodes: Iterable[dict]) -> dict | None:
    """The node with a checkpoint and the lowest finite validation loss (earliest on ties)."""
    candidates = [n for n in nodes if n["checkpoint_id"] is not None and _finite(n["val_loss"])]
    if not candidates:
        return None
    return min(candidates, key=lambda n: (n["val_loss"], n["epoch"], n["id"]))


def retained_nodes(
    nodes: list[dict],
    *,
    n_params: int,
    retention: dict,
    protected: Iterable[int] = (),
) -> set[int]:
    """Ids of the nodes whose checkpoints the budget keeps (among nodes that have one).

    Models of at most ``max_params_keep_all`` parameters keep all. Larger ones keep, per branch,
    the last ``keep_last`` epochs, every ``keep_every``-th epoch and the lowest-val-loss node;
    roots (no parent) and ``protected`` ids (the head, fork nodes) are always kept.
    """
    with_blob = [n for n in nodes if n["checkpoint_id"] is not None]
    if n_params <= retention["max_params_keep_all"]:
        return {n["id"] for n in with_blob}
    keep = {n["id"] for n in with_blob if n["parent_id"] is None}
    keep.update(protected)
    by_branch: dict[int, list[dict]] = defaultdict(list)
    for n in with_blob:
        by_branch[n["branch"]].append(n)
    for branch_nodes in by_branch.values():
        branch_nodes.sort(key=lambda n: n["epoch"])
        keep.update(n["id"] for n in branch_nodes[-retention["keep_last"]:])
        keep.update(n["id"] for n in branch_nodes if n["epoch"] % retention["keep_every"] == 0)
        best = best_node(branch_nodes)
        if best is not None:
            keep.add(best["id"])
    return keep & {n["id"] for n in with_blob}


def rising_epochs(path: list[dict]) -> int:
    """How many consecutive epochs, ending at the last node of ``path`` (root to head), raised
    the validation loss over the previous node."""
    count = 0
    for prev, cur in zip(path[-2::-1], path[::-1]):
        if not (_finite(prev["val_loss"]) and _finite(cur["val_loss"])):
            break
        if cur["val_loss"] <= prev["val_loss"]:
            break
        count += 1
    return count


def auto_trigger(path: list[dict], auto: dict, *, diverged: bool) -> str | None:
    """Why the babysitter should act now (a sentence), or None.

    ``path`` is the lineage root to head; ``diverged`` says the epoch just tried had a
    non-finite loss (it was not applied, so the head is the last good node).
    """
    if not auto.get("enabled"):
        return None
    if diverged:
        return "the loss became non-finite"
    patience = int(auto["patience"])
    if rising_epochs(path) >= patience:
        return f"validation loss rose for {patience} consecutive epochs"
    return None
