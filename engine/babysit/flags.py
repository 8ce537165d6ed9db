"""The babysit CLI's flag tables, shared by its parser (``cli``) and its commands
(``cli_commands``) without either importing the other. No heavy imports: ``--help`` stays quick."""

from __future__ import annotations

IDLE_EXIT = 30.0  # = engine.babysit.runner.IDLE_EXIT (not imported here: --help stays quick)
# (flag, TrainConfig field, type)
TRAIN_FLAGS = (
    ("--lr", "learning_rate", float), ("--optimizer", "optimizer", str),
    ("--momentum", "momentum", float), ("--beta1", "beta1", float), ("--beta2", "beta2", float),
    ("--epsilon", "epsilon", float), ("--batch-size", "batch_size", int), ("--l2", "l2", float),
    ("--dropout", "dropout", float), ("--bn-momentum", "bn_momentum", float),
    ("--decay", "decay", str), ("--decay-rate", "decay_rate", float),
    ("--decay-every", "decay_every", int),
)
