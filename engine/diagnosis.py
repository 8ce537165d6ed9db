"""Flags for sick networks, read off a trial's per-epoch metrics and health.

``diagnose(epochs)`` takes the epochs of one trial (or one babysitting lineage) in order, each
an EpochMetrics dict that may carry ``"health"`` (``engine.nn.health.epoch_health``; epochs
without it are skipped by the health rules), and returns the flags it raises, each a plain
JSON-ready dict ``{"kind", "epoch", "layer", "value", "text"}``: the first epoch it showed
(or, for a state that can pass, the first epoch of its current run), the layer (or None), the
number quoted and the evidence in plain words:

- ``exploding_gradients``: the gradient norm reached ``EXPLODING_NORM``, or grew
  ``EXPLODING_GROWTH`` times over its first measured value (and is at least 10):
  "exploding gradients from epoch 7 (norm 1e4)", quoting the largest norm since;
- ``dead_relus``: at the last measured epoch a layer has at least ``DEAD_SHARE`` of its ReLUs
  dead: "62% dead ReLUs in layer 2" (the worst layer);
- ``softmax_saturated``: at the last measured epoch at least ``SATURATED_WRONG`` of the rows
  are predicted with probability >= 0.99 and wrong: "softmax saturated: 40% confident and
  wrong";
- ``no_learning``: over at least ``FLAT_EPOCHS`` epochs the training loss never moved more
  than ``FLAT_CHANGE`` of its first value (the first epoch's average includes the steep start
  of a net that learns): "no learning: loss flat at 0.693 for 8 epochs".

Pure functions of plain data (no NumPy), so storage, the babysitter and the pages share them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

FLAG_KINDS = ("exploding_gradients", "dead_relus", "softmax_saturated", "no_learning")
FLAG_LABELS = {
    "exploding_gradients": "exploding gradients",
    "dead_relus": "dead ReLUs",
    "softmax_saturated": "saturated softmax",
    "no_learning": "no learning",
}
EXPLODING_NORM = 1e3  # a gradient norm this large is exploding, whatever it started at
EXPLODING_GROWTH = 100.0  # ... and so is one this many times its first measured value
DEAD_SHARE = 0.5  # share of a layer's ReLUs that are dead
SATURATED_WRONG = 0.2  # share of rows predicted with p >= 0.99 and wrong
FLAT_EPOCHS = 5
FLAT_CHANGE = 0.02  # relative range of the training loss over all epochs


def format_number(value: float) -> str:
    """Short and exact enough for a sentence: 12345 -> "1.2e4", 0.5 -> "0.5"."""
    if value != 0 and (abs(value) >= 1e3 or abs(value) < 1e-3):
        mantissa, exponent = f"{value:.1e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.3g}"


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _measured(epochs: list[dict]) -> list[tuple[int, dict]]:
    return [(int(e["epoch"]), e["health"]) for e in epochs if e.get("health")]


def _flag(kind: str, epoch: int, value: float, text: str, layer: int | None = None) -> dict:
    return {"kind": kind, "epoch": epoch, "layer": layer, "value": float(value), "text": text}


def exploding_gradients(epochs: list[dict]) -> dict | None:
    series = [(e, h["grad_norm"]) for e, h in _measured(epochs) if _finite(h.get("grad_norm"))]
    if not series:
        return None
    first = series[0][1]
    for i, (epoch, norm) in enumerate(series):
        if norm >= EXPLODING_NORM or (norm >= 10 and norm >= EXPLODING_GROWTH * first):
            peak = max(n for _, n in series[i:])
            text = f"exploding gradients from epoch {epoch} (norm {format_number(peak)})"
            return _flag("exploding_gradients", epoch, peak, text)
    return None


def _since(measured: list[tuple[int, dict]], key: str, threshold: float) -> int:
    """The first epoch of the last run of measured epochs where health[key] >= threshold."""
    start = measured[-1][0]
    for epoch, health in reversed(measured):
        if not (_finite(health.get(key)) and health[key] >= threshold):
            break
        start = epoch
    return start


def dead_relus(epochs: list[dict]) -> dict | None:
    measured = _measured(epochs)
    if not measured:
        return None
    last = measured[-1][1]
    layers = []
    i = 1
    while f"grad_norm_{i}" in last:
        share = last.get(f"dead_{i}")
        if _finite(share) and share >= DEAD_SHARE:
            layers.append((share, -i))
        i += 1
    if not layers:
        return None
    share, minus_layer = max(layers)
    layer = -minus_layer
    text = f"{100 * share:.0f}% dead ReLUs in layer {layer}"
    return _flag("dead_relus", _since(measured, f"dead_{layer}", DEAD_SHARE), share, text, layer)


def softmax_saturated(epochs: list[dict]) -> dict | None:
    measured = _measured(epochs)
    if not measured:
        return None
    wrong = measured[-1][1].get("confident_wrong")
    if not (_finite(wrong) and wrong >= SATURATED_WRONG):
        return None
    text = f"softmax saturated: {100 * wrong:.0f}% confident and wrong"
    return _flag("softmax_saturated", _since(measured, "confident_wrong", SATURATED_WRONG),
                 wrong, text)


def no_learning(epochs: list[dict]) -> dict | None:
    rows = [e for e in epochs if _finite(e.get("train_loss"))]
    if len(rows) < FLAT_EPOCHS:
        return None
    losses = [r["train_loss"] for r in rows]
    if (max(losses) - min(losses)) / max(abs(losses[0]), 1e-12) > FLAT_CHANGE:
        return None
    text = f"no learning: loss flat at {format_number(losses[-1])} for {len(rows)} epochs"
    return _flag("no_learning", int(rows[0]["epoch"]), losses[-1], text)


RULES = (exploding_gradients, dead_relus, softmax_saturated, no_learning)


def diagnose(epochs: Iterable[dict]) -> list[dict]:
    """Every flag the epochs raise, in ``FLAG_KINDS`` order (see the module docstring)."""
    epochs = sorted(epochs, key=lambda e: int(e["epoch"]))
    return [flag for rule in RULES if (flag := rule(epochs)) is not None]


def count_flags(flag_lists: Iterable[list[dict]]) -> dict[str, int]:
    """How many of the given flag lists (one per trial) have each kind: {kind: n}."""
    counts = dict.fromkeys(FLAG_KINDS, 0)
    for flags in flag_lists:
        for kind in {f["kind"] for f in flags or ()}:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def flag_kinds(flags: list[dict] | None) -> list[str]:
    """The kinds of a flag list, in ``FLAG_KINDS`` order."""
    present = {f["kind"] for f in flags or ()}
    return [k for k in FLAG_KINDS if k in present]
