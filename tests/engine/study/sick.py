"""A tiny study with three sick trials and a healthy one, trained for real by the study runner
(``engine.run.work.run_segment``, on threads): what the health storage and the dashboard's
flags are tested on.

SGD (the momentum optimizer with beta 0) on 3 blobs with a 16-16 ReLU net and no batch norm,
by learning rate: 0.01 is healthy; 3 explodes at once (gradient norm ~1e11) and kills the
ReLUs; 30 kills them too and saturates the softmax at every epoch (two thirds of the rows
predicted with p >= 0.99 and wrong: with every ReLU dead the output is softmax(bias), and each
step moves the biases by ~30 x (p - 1/3), so one class always wins by a wide margin).

Not momentum 0.9: its velocity makes the dead net's biases swing in and out of saturation, so
whether the last epoch was saturated depended on the CPU's BLAS kernel (it ended unsaturated
on an AMD EPYC, saturated on a Skylake).
"""

from __future__ import annotations

from engine.run.work import run_segment
from engine.study.facade import new_study
from tests.engine.study.helpers import run_fake

BLOBS = {"kind": "blobs", "n_samples": 240, "n_classes": 3, "noise": 0.3, "seed": 0}
SPACE = {
    "params": {"learning_rate": {"type": "choice", "options": [0.01, 3.0, 30.0]}},
    "fixed": {"hidden_layers": 2, "hidden_units": 16, "batch_norm": False,
              "optimizer": "momentum", "momentum": 0.0, "batch_size": 16},
}
EPOCHS = 6
EXPECTED = {  # learning rate -> the flags its trial raises
    0.01: [],
    3.0: ["exploding_gradients", "dead_relus"],
    30.0: ["dead_relus", "softmax_saturated"],
}


def every_epoch(task: dict) -> dict:
    """The work unit measuring health at every epoch (the default cadence picks by time)."""
    return run_segment({**task, "health_every": 1})


def sick_study(db_path, *, work_fn=every_epoch, **options) -> int:
    """Create and run the study to the end (health every epoch unless ``work_fn`` says
    otherwise, e.g. ``run_segment``: the default cadence); return its id."""
    study_id = new_study(db_path, name="sick nets", space=SPACE, sampler={"kind": "grid"},
                         scheduler={"kind": "full_budget", "n_epochs": EPOCHS}, dataset=BLOBS,
                         seed=0, workers=1)
    options.setdefault("max_segment_epochs", 3)
    assert run_fake(db_path, study_id, work_fn=work_fn, **options) == "complete"
    return study_id
