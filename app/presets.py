"""Ready-made searches the dashboard launches in one click: the demo, and grid vs random.

Each function returns keyword arguments for ``engine.study.facade.new_study`` (plain JSON-ready
dicts), so the pages stay short and tests can check the presets without a browser.
"""

from __future__ import annotations

DEMO_DATASET = {"kind": "digits", "seed": 0, "name": "handwritten digits"}
TOY_DATASET = {"kind": "spirals", "n_samples": 400, "n_classes": 3, "noise": 0.2, "seed": 0,
               "name": "spirals"}
DEMO_EPOCHS = 60
DEMO_TRIALS = 48


def demo_study(workers: int = 2) -> dict:
    """Random search on the handwritten digits: learning rate, width and L2 (all log) and Adam's
    beta1 (1 - log), 48 trials of 60 epochs (batch 32) on 2 workers. An epoch takes 10 to 20 ms,
    so the study runs for half a minute or so: long enough to watch the points land."""
    space = {
        "params": {
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
            "hidden_units": {"type": "int", "low": 4, "high": 256, "scale": "log"},
            "l2": {"type": "float", "low": 1e-6, "high": 1e-1, "scale": "log"},
            "beta1": {"type": "float", "low": 0.5, "high": 0.99, "scale": "one_minus_log"},
        },
        "fixed": {"optimizer": "adam", "hidden_layers": 2, "activation": "relu",
                  "batch_norm": True, "batch_size": 32},
    }
    return {
        "name": "Demo: random search on digits",
        "space": space,
        "sampler": {"kind": "random"},
        "scheduler": {"kind": "full_budget", "n_epochs": DEMO_EPOCHS},
        "dataset": dict(DEMO_DATASET),
        "n_trials": DEMO_TRIALS,
        "seed": 0,
        "workers": workers,
    }


def grid_vs_random(points_per_axis: int = 3, n_epochs: int = 10) -> tuple[dict, dict]:
    """Two studies with the same budget (``points_per_axis**2`` trials of ``n_epochs``): a grid
    and a random search over the learning rate (which matters) and dropout (which barely does).
    The grid tries only ``points_per_axis`` learning rates; random search tries one per trial.
    One worker each, so the two run side by side on two cores."""
    space = {
        "params": {
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
            "dropout": {"type": "float", "low": 0.0, "high": 0.3, "scale": "linear"},
        },
        "fixed": {"optimizer": "adam", "hidden_layers": 2, "hidden_units": 32,
                  "batch_norm": True, "batch_size": 32},
    }
    n_trials = points_per_axis**2
    common = {
        "space": space,
        "scheduler": {"kind": "full_budget", "n_epochs": n_epochs},
        "dataset": dict(TOY_DATASET),
        "n_trials": n_trials,
        "seed": 0,
        "workers": 1,
    }
    grid = {**common, "name": f"Grid {points_per_axis}x{points_per_axis}",
            "sampler": {"kind": "grid", "points_per_axis": points_per_axis}}
    random = {**common, "name": f"Random ({n_trials} trials)", "sampler": {"kind": "random"}}
    return grid, random


def random_vs_learning(n_trials: int = 24, n_epochs: int = 10) -> list[dict]:
    """Three studies at the same budget (``n_trials`` trials of ``n_epochs`` on spirals, one
    worker each): random search, ``zoom`` (coarse to fine in rounds of 4 after 8 Sobol trials)
    and ``gp`` (Bayesian optimisation after 8 Sobol trials), over four knobs of which the
    learning rate and the width matter most. Same seed: the first trials of zoom and gp are
    the same Sobol points; what they learn from them makes the difference."""
    space = {
        "params": {
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
            "hidden_units": {"type": "int", "low": 4, "high": 128, "scale": "log"},
            "l2": {"type": "float", "low": 1e-6, "high": 1e-1, "scale": "log"},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5, "scale": "linear"},
        },
        "fixed": {"optimizer": "adam", "hidden_layers": 2, "batch_norm": True,
                  "batch_size": 32},
    }
    common = {
        "space": space,
        "scheduler": {"kind": "full_budget", "n_epochs": n_epochs},
        "dataset": dict(TOY_DATASET),
        "n_trials": n_trials,
        "seed": 0,
        "workers": 1,
    }
    samplers = [
        ("Random", {"kind": "random"}),
        ("Zoom", {"kind": "zoom", "first_round": 8, "round_size": 4}),
        ("GP", {"kind": "gp", "n_startup": 8}),
    ]
    return [{**common, "name": f"{label} ({n_trials} trials)", "sampler": sampler}
            for label, sampler in samplers]
