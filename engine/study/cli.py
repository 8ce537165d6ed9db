"""``python -m engine run | resume | stop | list | show | export | sample``: studies, headless.

``run`` creates a study and runs its runner in the foreground (watch it live in the dashboard),
or runs an existing study; ``--detach`` starts the runner in the background, as the dashboard
does. ``engine.cli`` routes here through ``add_parser``, which builds every study parser; the
reading commands (``list``, ``show``, ``export``) live in ``engine.study.cli_read``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

SAMPLER_NAMES = {
    "random": {"kind": "random"},
    "grid": {"kind": "grid"},
    "quasi_random": {"kind": "quasi_random", "method": "sobol"},
    "sobol": {"kind": "quasi_random", "method": "sobol"},
    "lhs": {"kind": "quasi_random", "method": "lhs"},
    "zoom": {"kind": "zoom"},
    "tpe": {"kind": "tpe"},
    "gp": {"kind": "gp"},
}


def _sampler_epilog() -> str:
    """One line per sampler kind on when to use it (from the samplers themselves)."""
    import textwrap

    from engine.search import SAMPLERS

    lines = [textwrap.fill(cls.summary, 96, initial_indent=f"  {kind:15s} ",
                           subsequent_indent=" " * 18)
             for kind, cls in SAMPLERS.items() if cls.summary]
    return "samplers:\n" + "\n".join(lines)


def _json_arg(text: str, what: str) -> dict:
    """A JSON object given inline or as a path to a .json file."""
    path = Path(text)
    try:
        raw = path.read_text() if path.suffix == ".json" or path.is_file() else text
        value = json.loads(raw)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what}: cannot read a JSON object from {text!r}: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _sampler(text: str) -> dict:
    if text in SAMPLER_NAMES:
        return dict(SAMPLER_NAMES[text])
    if not text.lstrip().startswith("{") and not Path(text).is_file():
        raise ValueError(
            f"unknown sampler {text!r}; valid: {', '.join(SAMPLER_NAMES)}, or a sampler JSON "
            "object or file"
        )
    return _json_arg(text, "--sampler")


def _whole(low: int):
    """An argparse type: a whole number >= ``low``, or a message naming the value and the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {low}, got {text!r}")
        return value
    parse.__name__ = f"whole number >= {low}"
    return parse


def _read_csv(path_text: str) -> str:
    """The text of ``--csv``'s file, or a ValueError saying what is wrong with it."""
    from engine.data import decode_csv_bytes

    path = Path(path_text)
    if path.is_dir():
        raise ValueError(f"--csv: {path_text!r} is a directory; give a CSV file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"--csv: no file {path_text!r} (from {Path.cwd()})") from None
    except OSError as exc:
        raise ValueError(f"--csv: cannot read {path_text!r}: {exc.strerror}") from None
    try:
        return decode_csv_bytes(data)
    except ValueError as exc:
        raise ValueError(f"--csv {path_text!r}: {exc}") from None


def _existing_study(args: argparse.Namespace, study_id: int) -> None:
    """Refuse (before any runner row is written) a study id that is not in the database."""
    from engine.storage.blobs import NotFoundError
    from engine.storage.studies import get_study

    conn = _connect(args)
    try:
        get_study(conn, study_id)
    except NotFoundError:
        raise LookupError(f"no study with id {study_id} in {_db_path(args)}; "
                          "`python -m engine list` shows the studies") from None
    finally:
        conn.close()


def _db_path(args: argparse.Namespace) -> Path:
    from engine.storage.db import default_path

    return Path(args.db) if args.db else default_path()


def _connect(args: argparse.Namespace):
    from engine.storage.db import connect

    return connect(_db_path(args))


def _log_to_stdout() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
        stream=sys.stdout, force=True,
    )


# -- commands ------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from engine.study.facade import new_study, start_study
    from engine.study.runner import run_study

    study_id = args.study if args.study is not None else args.study_id
    if study_id is None:
        study_id = new_study(_db_path(args), **_study_options(args))
        print(f"created study {study_id}", flush=True)
    else:
        _existing_study(args, study_id)
    if args.detach:
        _stack_for_child(args)
        pid = start_study(_db_path(args), study_id)
        print(f"study {study_id}: runner pid {pid}" if pid else
              f"study {study_id}: a runner is already alive, or nothing is left to run")
        return 0
    _log_to_stdout()
    status = run_study(_db_path(args), study_id, **_stack_option(args))
    _print_outcome(args, study_id, status)
    return 0 if status in ("complete", "stopped") else 1


def _print_outcome(args: argparse.Namespace, study_id: int, status: str) -> None:
    """The runner's final status, and why when it failed (the study's stored message)."""
    from engine.storage.studies import get_study

    message = get_study(_connect(args), study_id)["message"] if status == "failed" else None
    print(f"study {study_id}: {status}" + (f": {message}" if message else ""))


def _stack_option(args: argparse.Namespace) -> dict:
    """``run_study``'s ``stack`` option from --stack/--no-stack (none: the default rule)."""
    return {} if args.stack is None else {"stack": args.stack}


def _stack_for_child(args: argparse.Namespace) -> None:
    """--stack/--no-stack for a detached runner: through $PANDA_CAVIAR_STACK, which the child
    inherits (``engine.run.launch.runner_command``); this process ends right after."""
    if args.stack is not None:
        os.environ["PANDA_CAVIAR_STACK"] = "1" if args.stack else "0"


def _study_options(args: argparse.Namespace) -> dict:
    if args.dataset.endswith(".json"):
        dataset = _json_arg(args.dataset, "--dataset")
    else:
        dataset = {"kind": args.dataset, "n_samples": args.samples, "noise": args.noise}
        if args.classes is not None:
            dataset["n_classes"] = args.classes
    csv_text = None
    if args.csv:
        csv_text = _read_csv(args.csv)
        dataset = {"kind": "csv", "label_column": args.label, "name": Path(args.csv).name}
    if args.halving + args.hyperband + args.pbt > 1:
        raise ValueError("choose one of --halving, --hyperband and --pbt")
    if args.halving or args.hyperband:
        scheduler = {"kind": "hyperband" if args.hyperband else "successive_halving",
                     "min_epochs": args.min_epochs,
                     "max_epochs": 27 if args.epochs is None else args.epochs,
                     "eta": args.eta}
    elif args.pbt:
        scheduler = {"kind": "pbt", "interval": args.interval, "n_rounds": args.rounds}
    else:
        scheduler = {"kind": "full_budget"}
        if args.epochs is not None:
            scheduler["n_epochs"] = args.epochs
    return {
        "name": args.name, "space": _json_arg(args.space, "--space") if args.space else None,
        "sampler": _sampler(args.sampler), "scheduler": scheduler, "dataset": dataset,
        "n_trials": args.trials, "seed": args.seed, "workers": args.workers,
        "executor_address": args.scheduler or "", "csv_text": csv_text,
        "epoch_budget": args.epoch_budget, "objective": {"metric": args.objective},
    }


def cmd_resume(args: argparse.Namespace) -> int:
    from engine.storage.runners import post_intent, runner_alive
    from engine.study.facade import resume_study
    from engine.study.runner import run_study

    _existing_study(args, args.study_id)
    conn = _connect(args)
    if runner_alive(conn, "study", args.study_id):
        post_intent(conn, "study", args.study_id, "resume")
        print(f"study {args.study_id}: a runner is alive; asked it to resume"
              + ("" if args.stack is None else " (it keeps its own stacking: --stack/--no-stack "
                 "applies to a runner this command starts)"))
        return 0
    if args.detach:
        _stack_for_child(args)
        pid = resume_study(conn, args.study_id)
        print(f"study {args.study_id}: " + (f"runner pid {pid}" if pid else "nothing to resume"))
        return 0
    _log_to_stdout()
    status = run_study(_db_path(args), args.study_id, **_stack_option(args))
    _print_outcome(args, args.study_id, status)
    return 0 if status in ("complete", "stopped") else 1


def cmd_stop(args: argparse.Namespace) -> int:
    from engine.storage.studies import get_study
    from engine.study.facade import stop_study

    conn = _connect(args)
    outcome = stop_study(conn, args.study_id)
    deadline = time.monotonic() + args.timeout
    while args.wait and outcome == "stopping" and time.monotonic() < deadline:
        time.sleep(0.2)
        if get_study(conn, args.study_id)["status"] not in ("running", "stopping"):
            outcome = get_study(conn, args.study_id)["status"]
    print(f"study {args.study_id}: {outcome}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from engine.search import Space, default_space, sampler_from_dict

    space = Space.from_dict(_json_arg(args.space, "--space")) if args.space else default_space()
    sampler = sampler_from_dict(_sampler(args.sampler))
    print(json.dumps(sampler.sample(space, args.n, args.seed), indent=2))
    return 0


# -- parser --------------------------------------------------------------------------------
def _read(name: str) -> Callable[[argparse.Namespace], int]:
    """``engine.study.cli_read``'s command ``name``, loaded when it runs (``--help`` stays
    quick and this module imports nothing of it)."""
    def command(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module("engine.study.cli_read"), name)(args)
    return command


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, metavar="PATH",
                        help="database file (default $PANDA_CAVIAR_DB "
                        "or ./data/panda_caviar.db)")


def _add_stack(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", action=argparse.BooleanOptionalAction, default=None,
                        help="train the trials of one small shape together as stacked units "
                        "where it pays (the default, unless $PANDA_CAVIAR_STACK=0); "
                        "--no-stack trains every trial alone. For the runner this command "
                        "starts; not stored with the study")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the study sub-commands on ``python -m engine``'s parser."""
    p = sub.add_parser("run", help="create a study and run it, or run an existing study",
                       description="Create a study from the options and run its runner in the "
                       "foreground (watch it live in the dashboard), or with --study ID run an "
                       "existing study's runner. --detach starts the runner in the background.",
                       epilog=_sampler_epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study_id", nargs="?", type=int, metavar="ID", help="same as --study ID")
    p.add_argument("--study", type=int, default=None, help="run this existing study")
    p.add_argument("--name", default=None, help="study name")
    p.add_argument("--space", default=None, help="search space JSON file (default: demo space)")
    p.add_argument("--sampler", default="random",
                   help=f"{' | '.join(SAMPLER_NAMES)}, or a sampler JSON (see below)")
    p.add_argument("--trials", type=_whole(1), default=None, help="number of trials (grid: all)")
    p.add_argument("--epoch-budget", type=_whole(1), default=None, metavar="N",
                   help="stop asking for trials once N epochs in all are trained or reserved")
    p.add_argument("--objective", default="val_acc",
                   choices=("val_acc", "val_loss", "val_error", "train_acc", "train_loss"),
                   help="what the search optimises (accuracies up, losses and errors down)")
    p.add_argument("--epochs", type=_whole(1), default=None, help="epochs per trial (the budget)")
    p.add_argument("--dataset", default="moons",
                   help="moons | circles | spirals | blobs | xor | digits | synthetic, or JSON")
    p.add_argument("--samples", type=_whole(1), default=500, help="toy/synthetic dataset size")
    p.add_argument("--noise", type=float, default=0.2, help="toy dataset noise")
    p.add_argument("--classes", type=_whole(2), default=None,
                   help="blobs/spirals/synthetic classes")
    p.add_argument("--csv", default=None, help="train on this CSV file (with --label)")
    p.add_argument("--label", default="label", help="the CSV's label column")
    p.add_argument("--workers", type=_whole(1), default=None,
                   help="parallel trials (default: CPUs)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler address, e.g. tcp://host:8786 (default: local processes)")
    p.add_argument("--halving", action="store_true",
                   help="successive halving (ASHA) instead of full budget")
    p.add_argument("--hyperband", action="store_true",
                   help="Hyperband: brackets of ASHA, from a first rung of --min-epochs to none")
    p.add_argument("--min-epochs", type=_whole(1), default=1, help="halving, hyperband: first rung")
    p.add_argument("--eta", type=_whole(2), default=3,
                   help="halving, hyperband: keep the top 1/eta per rung")
    p.add_argument("--pbt", action="store_true",
                   help="population-based training: every round the worst trials copy a better "
                   "one's weights and perturb its training knobs")
    p.add_argument("--interval", type=_whole(1), default=2, help="pbt: epochs per round")
    p.add_argument("--rounds", type=_whole(1), default=5, help="pbt: number of rounds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--detach", action="store_true", help="start the runner in the background")
    _add_stack(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resume", help="continue a stopped or interrupted study",
                       description="Continue every unfinished trial from its last checkpoint "
                       "(in the foreground; --detach for the background).")
    p.add_argument("study_id", type=int, metavar="ID")
    p.add_argument("--detach", action="store_true", help="start the runner in the background")
    _add_stack(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("stop", help="stop a study after its running segments",
                       description="Ask the study's runner to stop: running trials finish their "
                       "segment, are checkpointed and marked stopped.")
    p.add_argument("study_id", type=int, metavar="ID")
    p.add_argument("--wait", action="store_true", help="wait until the runner has stopped")
    p.add_argument("--timeout", type=float, default=60.0, help="--wait at most this long (s)")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("list", help="list studies", description="List every study.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_read("cmd_list"))

    p = sub.add_parser("show", help="show a study and its trials",
                       description="Show a study's settings and its trials.")
    p.add_argument("study_id", type=int, metavar="ID")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--errors", action="store_true", help="print trial errors and tracebacks")
    p.set_defaults(func=_read("cmd_show"))

    p = sub.add_parser("export", help="export trials or metrics as CSV",
                       description="Export a study's trials (one row each) or metrics (one row "
                       "per trial epoch) as CSV; formula-like cells are escaped.")
    p.add_argument("study_id", type=int, metavar="ID")
    p.add_argument("--what", choices=("trials", "metrics"), default="trials")
    p.add_argument("-o", "--output", default=None, help="output file (default: stdout)")
    p.set_defaults(func=_read("cmd_export"))

    p = sub.add_parser("sample", help="print samples of a search space as JSON",
                       description="Print N sampled parameter sets of a space as JSON.")
    p.add_argument("--space", default=None, help="space JSON file (default: demo space)")
    p.add_argument("-n", type=_whole(1), default=5, help="number of samples")
    p.add_argument("--sampler", default="random",
                   help=f"{' | '.join(SAMPLER_NAMES)}, or a sampler JSON")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_sample)

    for name in ("run", "resume", "stop", "list", "show", "export", "sample"):
        _add_db(sub.choices[name])
