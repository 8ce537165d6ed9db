"""Network health as stored beside each epoch's metrics: cleaned, bounded, JSON.

``engine.nn.health.epoch_health`` gives a flat dict of floats (or None) per measured epoch.
Before it is stored (``metrics.health_json`` of a trial's epoch, ``session_nodes.health_json``
of a babysitting node, ``trials.health_json`` for a trial's last measured epoch),
``clean_health`` keeps only the known keys (``SUMMARY_FIELDS``, and ``f"{field}_{i}"`` for
``field`` in ``LAYER_FIELDS`` and layers ``1..MAX_LAYERS``), only finite numbers, rounded to
``SIGNIFICANT`` digits; a None or non-finite value is left out (absent means "not measured or
does not apply"). So a stored epoch holds at most ``8 * MAX_LAYERS + 6`` numbers, about 3 kB
for the deepest model the search can build, and nothing non-finite.

The field names are those of ``engine.nn.health`` (a test checks that they agree); they are
repeated here so that storage, and the runners importing it, do not load NumPy.
"""

from __future__ import annotations

import json
import math
import re

LAYER_FIELDS = (
    "grad_norm", "update_ratio", "weight_norm", "pre_mean", "pre_std", "dead", "bn_shift",
    "bn_var_ratio",
)
SUMMARY_FIELDS = ("grad_norm", "update_ratio", "dead", "max_prob", "confident_wrong", "rows")
MAX_LAYERS = 20  # affine layers kept (the search builds at most 16 hidden + the output)
SIGNIFICANT = 4  # significant digits kept of each number
_LAYER_KEY = re.compile(r"^([a-z_]+?)_(\d+)$")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.{SIGNIFICANT}g}")


def _known(key: object) -> bool:
    if not isinstance(key, str):
        return False
    if key in SUMMARY_FIELDS:
        return True
    match = _LAYER_KEY.match(key)
    return bool(match) and match[1] in LAYER_FIELDS and 1 <= int(match[2]) <= MAX_LAYERS


def clean_health(health: dict | None) -> dict[str, float] | None:
    """The storable part of a health dict (see the module docstring); None if nothing is."""
    if not isinstance(health, dict):
        return None
    out = {}
    for key, value in health.items():
        number = _number(value)
        if number is not None and _known(key):
            out[key] = number
    return out or None


def dump_health(health: dict | None) -> str | None:
    """The JSON text stored for a health dict (cleaned), or None (SQL NULL)."""
    clean = clean_health(health)
    return None if clean is None else json.dumps(clean, separators=(",", ":"))


def load_health(text: str | None) -> dict[str, float] | None:
    """A stored health dict back (None for NULL)."""
    return None if text is None else json.loads(text)


def health_columns(healths: list[dict | None]) -> list[str]:
    """The keys that occur in any of ``healths``, in a fixed order: the model-wide summary
    first, then layer by layer (1, 2, ...) each in ``LAYER_FIELDS`` order."""
    present = set()
    for h in healths:
        present.update(h or ())
    summary = [k for k in SUMMARY_FIELDS if k in present]
    layered = sorted(
        (k for k in present if k not in SUMMARY_FIELDS and _LAYER_KEY.match(k)),
        key=lambda k: (int(_LAYER_KEY.match(k)[2]), LAYER_FIELDS.index(_LAYER_KEY.match(k)[1])),
    )
    return summary + layered
