"""Pure decisions over a session's nodes: which checkpoints to keep, when the babysitter acts.

Nodes are the dicts of :mod:`engine.storage.sessions` (``id``, ``parent_id``, ``branch``,
``epoch``, ``checkpoint_id``, ``val_loss`` ...). Nothing here touches the database, so the
rules are tested on hand-made lists.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from engine.diagnosis import (
    DEAD_SHARE,
    EXPLODING_GROWTH,
    EXPLODING_NORM,
    FLAT_CHANGE,
    FLAT_EPOCHS,
    SATURATED_WRONG,
    format_number,
)

RETENTION_FIELDS = ("max_params_keep_all", "keep_last", "keep_every")
AUTO_FIELDS = (
    "enabled", "patience", "factor", "min_learning_rate", "max_rollbacks", "tolerance",
    "on_flags",
)


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
    """Validate the babysitter settings: ``enabled`` and ``on_flags`` bool, ``patience`` int
    >= 1, ``factor`` in (0, 1), ``min_learning_rate`` > 0, ``max_rollbacks`` in 1..1000,
    ``tolerance`` in [0, 1).
    Returns a dict with only the given keys."""
    unknown = sorted(set(auto) - set(AUTO_FIELDS))
    if unknown:
        raise ValueError(
            f"unknown auto-babysitter field(s) {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(AUTO_FIELDS)}"
        )
    out = dict(auto)
    for key in ("enabled", "on_flags"):
        if key in out and not isinstance(out[key], bool):
            raise ValueError(f"auto {key} must be true or false, got {key}={out[key]!r}")
    if "patience" in out:
        p = out["patience"]
        if isinstance(p, bool) or not isinstance(p, int) or p < 1:
            raise ValueError(f"auto patience must be an integer >= 1, got patience={p!r}")
    if "factor" in out:
        f = out["factor"]
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0.0 < f < 1.0:
            raise ValueError(f"auto factor must be a number in (0, 1), got factor={f!r}")
        out["factor"] = float(f)
    if "min_learning_rate" in out:
        m = out["min_learning_rate"]
        if isinstance(m, bool) or not isinstance(m, int | float) or not 0.0 < m < math.inf:
            raise ValueError(
                f"auto min_learning_rate must be a number > 0, got min_learning_rate={m!r}"
            )
        out["min_learning_rate"] = float(m)
    if "max_rollbacks" in out:
        r = out["max_rollbacks"]
        if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= 1000:
            raise ValueError(
                f"auto max_rollbacks must be an integer from 1 to 1000, got max_rollbacks={r!r}"
            )
    if "tolerance" in out:
        t = out["tolerance"]
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 <= t < 1.0:
            raise ValueError(f"auto tolerance must be a number in [0, 1), got tolerance={t!r}")
        out["tolerance"] = float(t)
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
    the last ``keep_last`` epochs; further back, thinned with age: a node ``a`` epochs behind
    the branch's last one is kept when its epoch is a multiple of ``keep_every * 2**k`` with
    ``k = floor(log2(a / keep_last))`` (so a branch of ``N`` epochs keeps about ``keep_last *
    (1 + log2(N / keep_last) / keep_every)``, and a node dropped is never needed again); also
    the lowest-val-loss node, knob changes (a node trained with other knobs than its parent),
    roots and ``protected`` ids (the head, fork nodes).
    """
    with_blob = [n for n in nodes if n["checkpoint_id"] is not None]
    if n_params <= retention["max_params_keep_all"]:
        return {n["id"] for n in with_blob}
    keep_last, keep_every = retention["keep_last"], retention["keep_every"]
    by_id = {n["id"]: n for n in nodes}
    keep = {n["id"] for n in with_blob if n["parent_id"] is None}
    keep.update(protected)
    by_branch: dict[int, list[dict]] = defaultdict(list)
    for n in with_blob:
        by_branch[n["branch"]].append(n)
        parent = by_id.get(n["parent_id"])
        if parent is not None and parent.get("config") != n.get("config"):
            keep.add(n["id"])  # the first epoch under new knobs
    for branch_nodes in by_branch.values():
        branch_nodes.sort(key=lambda n: n["epoch"])
        last = branch_nodes[-1]["epoch"]
        for n in branch_nodes:
            age = last - n["epoch"]
            if age < keep_last:
                keep.add(n["id"])
                continue
            step = keep_every * 2 ** int(math.log2(age / keep_last))
            if n["epoch"] % step == 0:
                keep.add(n["id"])
        best = best_node(branch_nodes)
        if best is not None:
            keep.add(best["id"])
    return keep & {n["id"] for n in with_blob}


def rising_epochs(path: list[dict], tolerance: float = 0.0) -> int:
    """How many consecutive epochs, ending at the last node of ``path`` (root to head), raised
    the validation loss over the previous node by more than ``tolerance`` (relative: 0.02 =
    2%; smaller rises are noise and end the count)."""
    count = 0
    for prev, cur in zip(path[-2::-1], path[::-1]):
        if not (_finite(prev["val_loss"]) and _finite(cur["val_loss"])):
            break
        if cur["val_loss"] <= prev["val_loss"] * (1.0 + tolerance):
            break
        count += 1
    return count


def _norms(path: list[dict]) -> list[float | None]:
    """Each node's measured gradient norm (None where not measured)."""
    out = []
    for n in path:
        norm = (n.get("health") or {}).get("grad_norm")
        out.append(float(norm) if _finite(norm) else None)
    return out


def _exploding(norm: float | None, first: float) -> bool:
    return norm is not None and (
        norm >= EXPLODING_NORM or (norm >= 10 and norm >= EXPLODING_GROWTH * first))


def exploding_head(path: list[dict]) -> str | None:
    """The evidence when the head's gradients explode (a sentence), or None: its measured
    gradient norm is at least ``EXPLODING_NORM``, or at least 10 and ``EXPLODING_GROWTH`` times
    the first measured on the lineage (``engine.diagnosis``'s rule, on the head alone, so a
    rollback to before the explosion and a smaller learning rate end it)."""
    norms = _norms(path)
    measured = [x for x in norms if x is not None]
    if not measured or not _exploding(norms[-1], measured[0]):
        return None
    return f"exploding gradients at epoch {path[-1]['epoch']} (norm {format_number(norms[-1])})"


def calm_node(path: list[dict]) -> dict | None:
    """The last node with a checkpoint before the lineage's gradients first exploded (the root
    if they exploded at once), or None when they never did."""
    norms = _norms(path)
    measured = [x for x in norms if x is not None]
    start = next((i for i, x in enumerate(norms) if measured and _exploding(x, measured[0])),
                 None)
    if start is None:
        return None
    before = [n for n in path[:start] if n["checkpoint_id"] is not None]
    return before[-1] if before else None


@dataclass(frozen=True)
class Act:
    """What the babysitter does: ``rule`` (``RULES``), ``reason`` (the evidence, a sentence),
    ``target`` (the node to roll back to; None or the head: stay) and ``rate`` (``"lower"``:
    times ``factor``, or ``"raise"``: divided by it)."""

    rule: str
    reason: str
    target: dict | None
    rate: str = "lower"


RULES = ("diverged", "exploding_gradients", "dead_relus", "softmax_saturated",
         "rising_val_loss", "no_learning")


def _health(node: dict) -> dict:
    return node.get("health") or {}


def _before_run(path: list[dict], bad: Callable[[dict], bool]) -> dict | None:
    """The last node with a checkpoint before the run of nodes, ending at the head, that are
    ``bad`` or not measured (the root if the run goes back to it; None if that is the head)."""
    start = len(path)
    while start > 0 and (not _health(path[start - 1]) or bad(_health(path[start - 1]))):
        start -= 1
    before = [n for n in path[:max(start, 1)] if n["checkpoint_id"] is not None]
    if not before or before[-1] is path[-1]:
        return None
    return before[-1]


def _dead_layers(health: dict) -> list[tuple[float, int]]:
    out, i = [], 1
    while f"grad_norm_{i}" in health:
        share = health.get(f"dead_{i}")
        if _finite(share) and share >= DEAD_SHARE:
            out.append((share, i))
        i += 1
    return out


def dead_head(path: list[dict]) -> tuple[str, int] | None:
    """(evidence, layer) when a hidden layer of the head has at least ``DEAD_SHARE`` of its
    ReLUs dead (the worst layer, the first on ties), or None."""
    layers = _dead_layers(_health(path[-1])) if path else []
    if not layers:
        return None
    share, layer = max(layers, key=lambda x: (x[0], -x[1]))
    return (f"{100 * share:.0f}% dead ReLUs in layer {layer} at epoch {path[-1]['epoch']}",
            layer)


def saturated_head(path: list[dict]) -> str | None:
    """The evidence when at least ``SATURATED_WRONG`` of the head's rows are predicted with
    probability >= 0.99 and wrong, or None."""
    wrong = _health(path[-1]).get("confident_wrong") if path else None
    if not (_finite(wrong) and wrong >= SATURATED_WRONG):
        return None
    return (f"softmax saturated at epoch {path[-1]['epoch']}: {100 * wrong:.0f}% confident "
            "and wrong")


STILL_AT_START = 0.1  # no learning: the loss is still within this share of the lineage's first


def flat_head(path: list[dict]) -> str | None:
    """The evidence when the training loss of the last ``FLAT_EPOCHS`` epochs, all trained at
    the head's learning rate, moved less than ``FLAT_CHANGE`` of its first value (so after the
    rate changes it takes ``FLAT_EPOCHS`` new epochs to say so again) and is still within
    ``STILL_AT_START`` of the lineage's first epoch's (a model that learnt and now sits on a
    plateau is left alone), or None."""
    tail = path[-FLAT_EPOCHS:]
    if len(tail) < FLAT_EPOCHS or not all(_finite(n.get("train_loss")) for n in tail):
        return None
    start = next(n["train_loss"] for n in path if _finite(n.get("train_loss")))
    if min(n["train_loss"] for n in tail) < (1.0 - STILL_AT_START) * start:
        return None
    rates = {(n.get("config") or {}).get("learning_rate") for n in tail}
    if len(rates) != 1:
        return None
    losses = [n["train_loss"] for n in tail]
    if (max(losses) - min(losses)) / max(abs(losses[0]), 1e-12) > FLAT_CHANGE:
        return None
    return (f"no learning: loss flat at {format_number(losses[-1])} for {FLAT_EPOCHS} epochs "
            f"at learning rate {format_number(float(rates.pop() or 0.0))}")


def auto_act(path: list[dict], auto: dict, *, diverged: bool) -> Act | None:
    """What the babysitter should do now, or None (the rules in ``RULES`` order).

    ``path`` is the lineage root to head; ``diverged`` says the epoch just tried had a
    non-finite loss (it was not applied, so the head is the last good node). A divergence or a
    rise of the validation loss for ``patience`` epochs (each above ``tolerance``, relative)
    rolls back to the lineage's best checkpoint and lowers the rate. With ``on_flags`` (default
    true) the head's health is read too (``engine.diagnosis``'s thresholds, on the head alone,
    so that acting ends them): exploding gradients roll back to the last checkpoint before the
    lineage's first explosion (``calm_node``), dead ReLUs and a saturated softmax to the last
    checkpoint before the head's run of such epochs, each with a lower rate (a smaller step
    keeps gradients, pre-activations and logits in range); no learning (the loss flat for
    ``FLAT_EPOCHS`` epochs at one rate, last of the rules) raises the rate, without a rollback.
    """
    if not auto.get("enabled"):
        return None
    if diverged:
        return Act("diverged", "the loss became non-finite", best_node(path))
    flags = auto.get("on_flags", True)
    if flags:
        flag = exploding_head(path)
        if flag is not None:
            return Act("exploding_gradients", flag, calm_node(path) or best_node(path))
        dead = dead_head(path)
        if dead is not None:
            text, layer = dead
            alive = _before_run(path, lambda h: (h.get(f"dead_{layer}") or 0) >= DEAD_SHARE)
            return Act("dead_relus", text, alive or best_node(path))
        flag = saturated_head(path)
        if flag is not None:
            calm = _before_run(path, lambda h: (h.get("confident_wrong") or 0) >= SATURATED_WRONG)
            return Act("softmax_saturated", flag, calm or best_node(path))
    patience = int(auto["patience"])
    tolerance = float(auto.get("tolerance", 0.0))
    if rising_epochs(path, tolerance) >= patience:
        return Act("rising_val_loss", f"validation loss rose for {patience} consecutive epochs",
                   best_node(path))
    if flags:
        flag = flat_head(path)
        if flag is not None:
            return Act("no_learning", flag, None, rate="raise")
    return None


def auto_trigger(path: list[dict], auto: dict, *, diverged: bool) -> str | None:
    """Why the babysitter should act now (a sentence), or None: ``auto_act``'s reason."""
    act = auto_act(path, auto, diverged=diverged)
    return None if act is None else act.reason


def give_up(auto: dict, *, learning_rate: float, actions: int,
            lowering: bool = True) -> str | None:
    """Why the babysitter stops helping (a sentence), or None to act once more.

    ``actions`` = how often it already acted in this run (each act is a rollback and/or a
    learning-rate change). It gives up after ``max_rollbacks`` acts, or, when the act would
    lower the rate (``lowering``), when the learning rate is already at its floor
    ``min_learning_rate`` (so a cut would change nothing).
    """
    cap = int(auto["max_rollbacks"])
    if actions >= cap:
        return (f"gave up: it already acted {actions} times in this run (the limit, "
                f"max_rollbacks={cap}); the session is paused for you to look")
    floor = float(auto["min_learning_rate"])
    if lowering and learning_rate <= floor:
        return (f"gave up: the learning rate {learning_rate:g} is at its floor "
                f"(min_learning_rate={floor:g}) and cannot go lower; the session is paused for "
                "you to look")
    return None


def lowered_rate(auto: dict, learning_rate: float) -> float:
    """The learning rate after one cut: times ``factor``, never below ``min_learning_rate``."""
    return max(learning_rate * float(auto["factor"]), float(auto["min_learning_rate"]))


def raised_rate(auto: dict, learning_rate: float) -> float:
    """The learning rate after one raise (no learning): divided by ``factor``."""
    return learning_rate / float(auto["factor"])
