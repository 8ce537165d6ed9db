"""What the menus call the engine's internal names, and messages rewritten in those words.

The engine's messages name its identifiers (``one_minus_log``, ``successive_halving``); the
designer's menus show labels (``1-log (β)``, ``Successive halving (ASHA)``). A message a person
reads goes through :func:`menu_words`, so it says what the menu says.
"""

from __future__ import annotations

import re

SCALE_LABELS = {"linear": "linear", "log": "log", "one_minus_log": "1-log (β)"}
SAMPLER_LABELS = {"random": "Random", "quasi_random": "Quasi-random", "grid": "Grid",
                  "zoom": "Zoom (coarse to fine)", "tpe": "TPE", "gp": "Bayesian (GP)",
                  "coarse_to_fine": "Coarse-to-fine"}
SCHEDULE_LABELS = {"full_budget": "Full budget", "successive_halving": "Successive halving (ASHA)",
                   "pbt": "Population-based training"}

# Only identifiers that cannot be ordinary words ("log", "random", "grid" stay as written).
_INTERNAL = {name: label for labels in (SCALE_LABELS, SAMPLER_LABELS, SCHEDULE_LABELS)
             for name, label in labels.items() if "_" in name}
_PATTERN = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, _INTERNAL)) + r")(?!\w)")


def menu_words(text: object) -> str:
    """``text`` with each internal name the menus label differently replaced by its label:
    ``"one_minus_log scale needs 0 <= low"`` -> ``"1-log (β) scale needs 0 <= low"`` (also
    inside quotes: a person picked the label, never typed the identifier)."""
    return _PATTERN.sub(lambda m: _INTERNAL[m.group(1)], str(text))
