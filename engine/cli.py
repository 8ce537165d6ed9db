"""``python -m engine``: run, watch and export studies and babysit models from a terminal.

A short router. The study (Caviar) commands ``run``, ``resume``, ``stop``, ``list``, ``show``,
``export`` and ``sample`` live in ``engine.study.cli``; ``babysit ...`` (Panda) in
``engine.babysit.cli``. Each module in ``SUBCOMMAND_MODULES`` exposes ``add_parser(subparsers)``,
which adds its parser(s) and sets ``func=callable(args) -> int`` with ``set_defaults``. A listed
module that does not exist is skipped (only a ``ModuleNotFoundError`` for that very module or
its package; any other import error is raised). Every sub-command takes ``--db PATH`` (also
accepted before the sub-command; default ``$PANDA_CAVIAR_DB``).

Heavy imports (NumPy, the engine) happen inside the commands, so ``--help`` stays quick.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = ["engine.study.cli", "engine.study.cli_actions", "engine.babysit.cli"]


def _add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            parts = name.split(".")
            if exc.name in {".".join(parts[:i]) for i in range(2, len(parts) + 1)}:
                continue  # not written yet
            raise
        module.add_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine", description="Panda & Caviar: tune neural networks from a "
        "terminal. Studies run in a runner process and show live in the dashboard.",
    )
    parser.add_argument("--db", dest="global_db", default=None, metavar="PATH",
                        help="database file (also accepted after the sub-command)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_plugin_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "db", None) is None:
        args.db = args.global_db
    try:
        return int(args.func(args) or 0)
    except (ValueError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
