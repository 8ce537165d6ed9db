"""``python -m engine babysit ...``: the argument parser (``engine.cli`` calls ``add_parser``).

The commands live in ``engine.babysit.cli_commands`` and load only when one runs, so ``--help``
is quick. Sub-commands: ``new``, ``adopt``, ``step``, ``pause``, ``set``, ``rollback``, ``auto``,
``pace``, ``show``, ``list`` and ``serve`` (the runner; ``engine.run.launch`` spawns it detached).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from engine.babysit.flags import AUTO_FLAGS, IDLE_EXIT, TRAIN_FLAGS


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module("engine.babysit.cli_commands"), name)(args)

    return run


def _training_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training hyperparameters (TrainConfig)")
    for flag, field, kind in TRAIN_FLAGS:
        group.add_argument(flag, dest=field, type=kind, default=None, help=field)


def _auto_args(parser: argparse.ArgumentParser) -> None:
    for flag, field, kind, text in AUTO_FLAGS:
        if kind is bool:
            parser.add_argument(flag, dest=field, action=argparse.BooleanOptionalAction,
                                default=None, help=text)
        else:
            parser.add_argument(flag, dest=field, type=kind, default=None, help=text)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``babysit`` and its sub-commands on ``python -m engine``'s parser."""
    top = subparsers.add_parser(
        "babysit", help="Panda: babysit one model epoch by epoch",
        description="Babysit one model: train epoch by epoch, change hyperparameters between "
                    "epochs, roll back to any kept checkpoint.",
    )
    sub = top.add_subparsers(dest="babysit_command", required=True, metavar="COMMAND")

    def leaf(name: str, help_: str, *, session: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        if session:
            p.add_argument("session_id", type=int, metavar="ID", help="session id")
        p.add_argument("--db", default=None, help="database file (default $PANDA_CAVIAR_DB)")
        p.set_defaults(func=_lazy(f"cmd_{name}"))
        return p

    p = leaf("new", "create a session from scratch", session=False)
    p.add_argument("--name", default="")
    p.add_argument("--dataset", default="moons", help="moons, circles, spirals, blobs, xor, "
                   "digits, synthetic")
    p.add_argument("--n-samples", type=int, default=500)
    p.add_argument("--noise", type=float, default=0.2)
    p.add_argument("--n-classes", type=int, default=None)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--hidden", default="16,16", help="hidden layer sizes, e.g. 64,64")
    p.add_argument("--activation", default="relu")
    p.add_argument("--no-batch-norm", action="store_true")
    p.add_argument("--init", default="he")
    p.add_argument("--seed", type=int, default=0, help="initial weights' seed")
    p.add_argument("--auto", action="store_true", help="turn the automatic babysitter on")
    _auto_args(p)
    _training_args(p)

    p = leaf("adopt", "continue a study's trial in a new session", session=False)
    p.add_argument("trial_id", type=int, metavar="TRIAL_ID")
    p.add_argument("--name", default=None)
    p.add_argument("--epoch", type=int, default=None,
                   help="the epoch to fork at (default: the latest, from its checkpoint); "
                   "an earlier one is replayed from the trial's start by the session's runner")

    p = leaf("step", "train N epochs (in the foreground if no runner is alive)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--epochs", type=int, default=1)
    group.add_argument("--until-paused", action="store_true")

    leaf("pause", "pause after the current epoch")

    p = leaf("set", "change training hyperparameters from the next epoch on")
    _training_args(p)
    p.add_argument("--other", nargs="*", metavar="KEY=VALUE",
                   help="any other field, value as JSON (architecture fields are refused)")

    p = leaf("rollback", "go back to a kept checkpoint (starts a new branch)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--epoch", type=int, help="an epoch on the current branch's lineage")
    group.add_argument("--node", type=int, help="any node id (see `show`)")
    p.add_argument("--restore-config", action="store_true",
                   help="also restore the hyperparameters that node was trained with")

    p = leaf("auto", "turn the automatic babysitter on or off")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--on", dest="on", action="store_true")
    group.add_argument("--off", dest="on", action="store_false")
    _auto_args(p)

    p = leaf("pace", "a pace for watching: the runner trains at most N epochs a second")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--eps", type=float, metavar="N",
                       help="epochs per second, in (0, 100]")
    group.add_argument("--off", action="store_true", help="full speed (the default)")

    p = leaf("show", "branches, epochs and events of a session")
    p.add_argument("--events", type=int, default=50, help="how many recent events")

    leaf("list", "every session", session=False)

    p = leaf("serve", "run the session's runner in this process")
    p.add_argument("--idle-exit", type=float, default=IDLE_EXIT,
                   help="exit after this many seconds with nothing to do")
