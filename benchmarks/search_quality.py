"""Search quality at an equal epoch budget: our samplers and schedulers against Optuna's.

    .venv/bin/pip install -r benchmarks/requirements.txt       # optuna==5.0.0
    .venv/bin/python benchmarks/search_quality.py                      # the spec: 20 seeds
    .venv/bin/python benchmarks/search_quality.py --seeds 0-9 --tasks crossing,mixed --out a.json
    .venv/bin/python benchmarks/search_quality.py --seeds 10-19 --tasks crossing,mixed --out b.json
    .venv/bin/python benchmarks/search_quality.py --merge a.json b.json   # the table over both

Every method runs on every task (`search_tasks.py`) with the same budget in epochs (64 x 27),
one trial at a time, each trial's training seed a function of (run seed, trial number) for
everyone. A trial counts as a result once it has trained all 27 epochs (its error then);
a pruned trial costs the epochs it ran. Our methods go through the same calls as the study
runner (`Sampler.ask(space, history, ask_rng)`, `Scheduler.next_milestone` / `decide`);
Optuna's through `study.ask` / `trial.report` / `trial.should_prune` / `study.tell`.

Printed per task and method: the median (over seeds) of the best error at 25/50/100% of the
budget, the median epochs to reach random search's final result (random = our random sampler
at 100%; "never" if most seeds do not), and the median number of distinct values tried on
each important axis (a float: distinct at 2 significant digits). Then PASS/FAIL lines:
our best method beats Optuna's TPE on every task at 100%, and reaches random search's final
result within a quarter of the budget on the synthetic tasks.

Cost: everything runs in this one process with BLAS on one thread (set before NumPy loads),
seed by seed, every method of a seed sharing one :class:`search_tasks.Curves` (the same trial
asked by two methods is trained once). The synthetic tasks cost well under a millisecond a
trial; the digits task's training is the cost, and ``gp`` asks are the next.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Callable

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads: one BLAS thread, as a worker has
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from search_report import Runs, Trace, load, report, save, verdicts  # noqa: E402
from search_tasks import N_EPOCHS, TASKS, Curves, Task  # noqa: E402

from engine.search import (  # noqa: E402
    History,
    Objective,
    TrialRecord,
    ask_rng,
    sampler_from_dict,
    scheduler_from_dict,
)

BUDGET = 64 * N_EPOCHS
FULL = {"kind": "full_budget", "n_epochs": N_EPOCHS}
ASHA = {"kind": "successive_halving", "min_epochs": 1, "max_epochs": N_EPOCHS, "eta": 3}
HYPERBAND = {"kind": "hyperband", "min_epochs": 1, "max_epochs": N_EPOCHS, "eta": 3}
OURS = {
    "random": ({"kind": "random"}, FULL),
    "sobol": ({"kind": "quasi_random", "method": "sobol"}, FULL),
    "zoom": ({"kind": "zoom"}, FULL),
    "tpe": ({"kind": "tpe"}, FULL),
    "gp": ({"kind": "gp"}, FULL),  # the default: a pessimistic prior mean, 10 Sobol trials
    "gp-5": ({"kind": "gp", "n_startup": 5}, FULL),  # shorter Sobol starts
    "gp-6": ({"kind": "gp", "n_startup": 6}, FULL),
    "gp-8": ({"kind": "gp", "n_startup": 8}, FULL),
    "gp-tr": ({"kind": "gp", "trust_region": True}, FULL),  # asks inside TuRBO's box
    "gp-mean": ({"kind": "gp", "prior_mean": "mean"}, FULL),  # the default until 2026-12-04
    "gp-5-mean": ({"kind": "gp", "n_startup": 5, "prior_mean": "mean"}, FULL),
    "random+asha": ({"kind": "random"}, ASHA),
    "tpe+asha": ({"kind": "tpe"}, ASHA),
    "gp+asha": ({"kind": "gp"}, ASHA),
    "tpe+hyperband": ({"kind": "tpe"}, HYPERBAND),
}
OPTUNA = ("optuna-random", "optuna-tpe", "optuna-qmc", "optuna-tpe+hyperband",
          "optuna-random+sha")


def train_seed(run_seed: int, number: int) -> int:
    """Trial ``number``'s training seed in run ``run_seed``: the same for every method."""
    return (run_seed * 100_003 + number * 7_919 + 17) % 2**31


Tried = list[dict]


def run_ours(task: Task, sampler: dict, scheduler: dict, seed: int, budget: int,
             curves: Curves) -> tuple[Trace, Tried]:
    space, trace, tried = task.space, Trace(), []
    smp, sch = sampler_from_dict(sampler), scheduler_from_dict(scheduler)
    history, spent = History((), Objective("val_error"), seed, None), 0
    until = [0]  # the epoch the trial surely reaches: its next milestone, within the budget

    def ahead(done: int) -> int:
        """Epochs to compute at once (a digits trial: one segment up to its next rung)."""
        return until[0] - done

    while spent < budget:
        number = history.number
        u = smp.ask(space, history, ask_rng(seed, number))
        if u is None:
            break
        params = space.params_from_unit(u)
        tried.append(params)
        target = sch.target_epochs(N_EPOCHS)
        record = TrialRecord(number, tuple(float(x) for x in u), params, "running", {}, target)
        history = history.with_trial(record)
        scores: dict[int, float] = {}
        milestone = sch.next_milestone(number, 0, target)
        until[0] = min(milestone, budget - spent)
        state, curve = "stopped", curves.curve(task, params, train_seed(seed, number), ahead)
        for epoch, error in enumerate(curve, 1):
            spent += 1
            scores[epoch] = error
            if epoch == milestone:
                history = history.with_trial(
                    TrialRecord(number, record.unit, params, "running", dict(scores), target))
                decision = sch.decide(number, epoch, history)
                if decision == "complete":
                    trace.results.append((spent, error))
                    state = "complete"
                    break
                if decision == "prune":
                    state = "pruned"
                    break
                milestone = sch.next_milestone(number, epoch, target)
                until[0] = min(milestone, epoch + budget - spent)
            if spent >= budget:
                break
        else:
            state = "diverged" if len(scores) < target else state
        history = history.with_trial(
            TrialRecord(number, record.unit, params, state, dict(scores), target))
        smp.tell(space, history, history.by_number(number))
    return trace, tried


def optuna_sampler(method: str, seed: int):
    import optuna

    if method.startswith("optuna-random"):
        return optuna.samplers.RandomSampler(seed=seed)
    if method == "optuna-qmc":
        return optuna.samplers.QMCSampler(scramble=True, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def optuna_pruner(method: str):
    import optuna

    if method.endswith("+hyperband"):
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=N_EPOCHS,
                                              reduction_factor=3)
    if method.endswith("+sha"):
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def run_optuna(task: Task, method: str, seed: int, budget: int,
               curves: Curves) -> tuple[Trace, Tried]:
    import optuna
    from optuna.trial import TrialState

    study = optuna.create_study(direction="minimize", sampler=optuna_sampler(method, seed),
                                pruner=optuna_pruner(method))
    trace, tried, spent = Trace(), [], 0
    pruned = not method.endswith(("-random", "-tpe", "-qmc"))

    def ahead(done: int) -> int:
        """Epochs to compute at once: up to the next rung of the pruners here (their rungs are
        powers of 3: 1, 3, 9, 27; without a pruner the whole run), within the budget."""
        rung = 3 ** math.ceil(math.log(done + 1, 3) - 1e-9) if pruned else N_EPOCHS
        return min(rung, N_EPOCHS, done + budget - spent) - done

    while spent < budget:
        trial = study.ask()
        params = task.optuna_params(trial)
        tried.append(params)
        state, value, last = TrialState.FAIL, None, None
        for epoch, error in enumerate(
                curves.curve(task, params, train_seed(seed, trial.number), ahead), 1):
            spent, last = spent + 1, error
            trial.report(error, epoch)
            if epoch == N_EPOCHS:
                trace.results.append((spent, error))
                state, value = TrialState.COMPLETE, error
                break
            if spent >= budget:
                break
            if trial.should_prune():
                state = TrialState.PRUNED
                break
        else:  # diverged: the worst error tells TPE this region is bad
            state, value = TrialState.COMPLETE, 1.0 if last is None else max(last, 1.0)
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    return trace, tried


def distinct(params_list: list[dict], name: str) -> int:
    """Distinct values of ``name`` tried (a float: distinct at 2 significant digits)."""
    def key(v):
        if isinstance(v, float):
            return float(f"{v:.2g}")
        return v
    return len({key(p[name]) for p in params_list})


def run_seed(task: Task, methods: list[str], seed: int,
             budget: int) -> tuple[dict[str, Trace], Curves]:
    """Every method on ``task`` with run seed ``seed``, sharing one :class:`Curves`."""
    curves, out = Curves(), {}
    for method in methods:
        c0 = time.process_time()
        if method in OURS:
            trace, tried = run_ours(task, *OURS[method], seed, budget, curves)
        else:
            trace, tried = run_optuna(task, method, seed, budget, curves)
        trace.cpu_s = time.process_time() - c0
        trace.trials = len(tried)
        trace.distinct = {n: distinct(tried, n) for n in task.important}
        out[method] = trace
    return out, curves


def parse_seeds(text: str, first: int) -> list[int]:
    """``"20"`` (20 seeds from ``first``), ``"0-19"``, ``"3,5,8"`` or a mix ``"0-4,9"``."""
    text = text.strip()
    if text.isdigit():
        if int(text) < 1:
            raise ValueError(f"a count of seeds must be at least 1, got {text!r} (one seed "
                             "by its number: a range such as 0-0)")
        return list(range(first, first + int(text)))
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()) or (high and int(high) < int(low)):
            raise ValueError(f"seeds must be a count (20), a range (0-19) or a list (1,4,7), "
                             f"got {part!r}")
        seeds.extend(range(int(low), int(high or low) + 1))
    return sorted(set(seeds))


def run_all(tasks: list[str], methods: list[str], seeds: dict[str, list[int]], budget: int,
            log: Callable[[str], None], out: str | None, meta: dict) -> Runs:
    runs: Runs = {}
    for name in tasks:
        log(f"\n== {name}: {len(seeds[name])} seeds, {len(methods)} methods")
        for seed in seeds[name]:
            c0, t0 = time.process_time(), time.perf_counter()
            traces, curves = run_seed(TASKS[name], methods, seed, budget)
            for method, trace in traces.items():
                runs.setdefault(name, {}).setdefault(method, {})[seed] = trace
            log(f"  seed {seed:>3}: {time.process_time() - c0:6.1f} s CPU, "
                f"{time.perf_counter() - t0:6.1f} s wall, epochs trained {curves.computed:,} of "
                f"{curves.served:,} asked, load {os.getloadavg()[0]:.2f}")
            if out:  # after every seed: a run cut short keeps what it finished
                save(out, runs, meta)
    return runs


def print_tables(runs: Runs, budget: int) -> None:
    summaries = {}
    for name, methods in runs.items():
        task = TASKS[name]
        summaries[name] = report(name, methods, budget, task.important, task.known_best)
    synthetic = [t for t in runs if TASKS[t].known_best is not None]
    verdicts(summaries, list(OURS), synthetic, budget)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="20",
                   help="synthetic tasks' seeds: a count from --first-seed (20, the spec), a "
                        "range 0-19 or a list 1,4,7")
    p.add_argument("--digits-seeds", default=None, help="the digits task's seeds (default: "
                   "as --seeds)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--tasks", default="crossing,mixed,digits")
    p.add_argument("--methods", default=",".join([*OURS, *OPTUNA]))
    p.add_argument("--budget", type=int, default=BUDGET, help="epochs per run (64 x 27)")
    p.add_argument("--out", help="write the results as JSON (after every seed)")
    p.add_argument("--merge", nargs="+", metavar="JSON",
                   help="run nothing: print the table over these result files")
    args = p.parse_args(argv)
    if args.merge:
        try:
            runs, metas = load(args.merge)
        except (OSError, ValueError, KeyError) as e:
            p.error(f"cannot read the results {args.merge}: {e}")
        for m in metas:
            print(f"merged {m['file']}: {m.get('started', '?')}, load {m.get('load', '?')}")
        budgets = {m.get("budget", BUDGET) for m in metas}
        if len(budgets) > 1:
            p.error(f"the files have different budgets {sorted(budgets)}: merge like with like")
        print_tables(runs, budgets.pop())
        return 0
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [t for t in tasks if t not in TASKS] + [m for m in methods
                                                  if m not in OURS and m not in OPTUNA]
    if bad:
        p.error(f"unknown task or method {bad}; tasks: {', '.join(TASKS)}; methods: "
                f"{', '.join([*OURS, *OPTUNA])}")
    try:
        synthetic = parse_seeds(args.seeds, args.first_seed)
        digits = parse_seeds(args.digits_seeds or args.seeds, args.first_seed)
    except ValueError as e:
        p.error(str(e))
    seeds = {t: digits if t == "digits" else synthetic for t in tasks}
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    load_now = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"search_quality: optuna {optuna.__version__}, budget {args.budget} epochs "
          f"({args.budget // N_EPOCHS} x {N_EPOCHS}), load {load_now} (1/5/15 min)", flush=True)
    meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "load": load_now,
            "budget": args.budget, "optuna": optuna.__version__}
    c0 = time.process_time()
    runs = run_all(tasks, methods, seeds, args.budget, lambda line: print(line, flush=True),
                   args.out, meta)
    print_tables(runs, args.budget)
    print(f"load at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{time.process_time() - c0:.0f} s CPU in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
