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
# (flag, auto-babysitter field, type, help); a bool is --flag / --no-flag
AUTO_FLAGS = (
    ("--patience", "patience", int, "act when the validation loss rose this many epochs in a row"
     " (default 3)"),
    ("--factor", "factor", float, "multiply the learning rate by this at each act (default 0.5)"),
    ("--min-lr", "min_learning_rate", float, "the learning rate's floor: at it the babysitter "
     "gives up and pauses (default 1e-6)"),
    ("--max-rollbacks", "max_rollbacks", int, "give up and pause after this many acts in one "
     "run, 1 to 1000 (default 5)"),
    ("--tolerance", "tolerance", float, "a rise of the validation loss smaller than this "
     "(relative, 0.05 = 5%%) is noise (default 0.05)"),
    ("--on-flags", "on_flags", bool, "also act on the head's network-health flags: exploding "
     "gradients, dead ReLUs, a saturated softmax (roll back, lower the learning rate), no "
     "learning (raise it); --no-on-flags: on the validation loss and divergence only "
     "(default on)"),
)
