"""Search quality at an equal epoch budget: our samplers and schedulers against Optuna's.

    .venv/bin/pip install -r benchmarks/requirements.txt       # optuna==5.0.0
    .venv/bin/python benchmarks/search_quality.py                      # the spec: 20 seeds
    .venv/bin/python benchmarks/search_quality.py --seeds 5 --digits-seeds 1   # fits this box

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
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from search_tasks import N_EPOCHS, TASKS, Task  # noqa: E402

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
    "gp": ({"kind": "gp"}, FULL),
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


class Trace:
    """What a run produced: completed results in order, with the epochs spent so far."""

    def __init__(self) -> None:
        self.results: list[tuple[int, float, dict]] = []  # (epochs spent, error, params)
        self.tried: list[dict] = []

    def best_at(self, epochs: float) -> float:
        done = [e for spent, e, _ in self.results if spent <= epochs]
        return min(done) if done else math.inf

    def epochs_to(self, target: float) -> float:
        best = math.inf
        for spent, error, _ in self.results:
            best = min(best, error)
            if best <= target:
                return spent
        return math.inf


def run_ours(task: Task, sampler: dict, scheduler: dict, seed: int, budget: int) -> Trace:
    space, trace = task.space, Trace()
    smp, sch = sampler_from_dict(sampler), scheduler_from_dict(scheduler)
    history, spent = History((), Objective("val_error"), seed, None), 0
    while spent < budget:
        number = history.number
        u = smp.ask(space, history, ask_rng(seed, number))
        if u is None:
            break
        params = space.params_from_unit(u)
        trace.tried.append(params)
        target = sch.target_epochs(N_EPOCHS)
        record = TrialRecord(number, tuple(float(x) for x in u), params, "running", {}, target)
        history = history.with_trial(record)
        scores: dict[int, float] = {}
        state, curve = "stopped", task.curve(params, train_seed(seed, number))
        milestone = sch.next_milestone(number, 0, target)
        for epoch, error in enumerate(curve, 1):
            spent += 1
            scores[epoch] = error
            if epoch == milestone:
                history = history.with_trial(
                    TrialRecord(number, record.unit, params, "running", dict(scores), target))
                decision = sch.decide(number, epoch, history)
                if decision == "complete":
                    trace.results.append((spent, error, params))
                    state = "complete"
                    break
                if decision == "prune":
                    state = "pruned"
                    break
                milestone = sch.next_milestone(number, epoch, target)
            if spent >= budget:
                break
        else:
            state = "diverged" if len(scores) < target else state
        history = history.with_trial(
            TrialRecord(number, record.unit, params, state, dict(scores), target))
        smp.tell(space, history, history.by_number(number))
    return trace


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


def run_optuna(task: Task, method: str, seed: int, budget: int) -> Trace:
    import optuna
    from optuna.trial import TrialState

    study = optuna.create_study(direction="minimize", sampler=optuna_sampler(method, seed),
                                pruner=optuna_pruner(method))
    trace, spent = Trace(), 0
    while spent < budget:
        trial = study.ask()
        params = task.optuna_params(trial)
        trace.tried.append(params)
        state, value, last = TrialState.FAIL, None, None
        for epoch, error in enumerate(task.curve(params, train_seed(seed, trial.number)), 1):
            spent, last = spent + 1, error
            trial.report(error, epoch)
            if epoch == N_EPOCHS:
                trace.results.append((spent, error, params))
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
    return trace


def distinct(params_list: list[dict], name: str) -> int:
    def key(v):
        if isinstance(v, float):
            return float(f"{v:.2g}")
        return v
    return len({key(p[name]) for p in params_list})


def median_or_inf(values: list[float]) -> float:
    """The median, where inf (never reached) counts: inf if half the values or more are inf."""
    return statistics.median(sorted(values))


def fmt(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:.4f}" if x < 1 else f"{x:.0f}"


def run_task(task: Task, methods: list[str], seeds: list[int], budget: int,
             log: Callable[[str], None]) -> dict[str, list[Trace]]:
    out: dict[str, list[Trace]] = {}
    for method in methods:
        start = time.perf_counter()
        traces = []
        for seed in seeds:
            if method in OURS:
                traces.append(run_ours(task, *OURS[method], seed, budget))
            else:
                traces.append(run_optuna(task, method, seed, budget))
        out[method] = traces
        log(f"  ran {method:<22} {len(seeds)} seeds in {time.perf_counter() - start:6.1f} s")
    return out


def report(task: Task, runs: dict[str, list[Trace]], budget: int) -> dict[str, dict]:
    reference = runs.get("random")
    target = median_or_inf([t.best_at(budget) for t in reference]) if reference else math.inf
    names = " ".join(f"{n[:12]:>12}" for n in task.important)
    print(f"\n{task.name}: random search's final result (median best at 100%) = {fmt(target)}"
          + (f"; known optimum {task.known_best:.3f}" if task.known_best is not None else ""))
    print(f"  {'method':<22} {'25%':>8} {'50%':>8} {'100%':>8} {'to random':>10} {'speed-up':>8}"
          f"  distinct: {names}")
    summary = {}
    for method, traces in runs.items():
        at = [median_or_inf([t.best_at(f * budget) for t in traces]) for f in (0.25, 0.5, 1.0)]
        reach = median_or_inf([t.epochs_to(target) for t in traces])
        speedup = budget / reach if reach and not math.isinf(reach) else 0.0
        counts = " ".join(
            f"{statistics.median(distinct(t.tried, n) for t in traces):>12.0f}"
            for n in task.important)
        print(f"  {method:<22} {fmt(at[0]):>8} {fmt(at[1]):>8} {fmt(at[2]):>8} {fmt(reach):>10}"
              f" {speedup:>7.1f}x  distinct: {counts}")
        summary[method] = {"final": at[2], "reach": reach}
    return summary


def verdicts(summaries: dict[str, dict[str, dict]], budget: int) -> None:
    ours = [m for m in OURS if all(m in s for s in summaries.values())]
    print()
    if not all("optuna-tpe" in s for s in summaries.values()) or not ours:
        print("PASS/FAIL: not judged (run with optuna-tpe and our methods on every task)")
        return
    beats = [m for m in ours if all(s[m]["final"] < s["optuna-tpe"]["final"]
                                    for s in summaries.values())]
    for task, s in summaries.items():
        best = min(ours, key=lambda m: s[m]["final"])
        print(f"  {task}: our best {best} {fmt(s[best]['final'])} vs optuna-tpe "
              f"{fmt(s['optuna-tpe']['final'])}")
    print(f"{'PASS' if beats else 'FAIL'}: one of our methods beats Optuna's TPE on every task "
          f"at 100% of the budget" + (f" ({', '.join(beats)})" if beats else ""))
    synthetic = [t for t in summaries if TASKS[t].known_best is not None]
    fast = [m for m in ours if m != "random" and synthetic and all(
        summaries[t][m]["reach"] <= budget / 4 for t in synthetic)]
    learners = [m for m in ours if m != "random"] or ours
    quarter = {t: min(learners, key=lambda m: summaries[t][m]["reach"]) for t in synthetic}
    for t, m in quarter.items():
        print(f"  {t}: fastest of ours to random's final result: {m} "
              f"({fmt(summaries[t][m]['reach'])} of {budget} epochs)")
    print(f"{'PASS' if fast else 'FAIL'}: one of our methods reaches random search's final result "
          f"in <= 1/4 of the budget on the synthetic tasks ({', '.join(synthetic) or 'none run'})"
          + (f" ({', '.join(fast)})" if fast else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20, help="seeds per synthetic task (spec: 20)")
    p.add_argument("--digits-seeds", type=int, default=20, help="seeds of the digits task")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--tasks", default="crossing,mixed,digits")
    p.add_argument("--methods", default=",".join([*OURS, *OPTUNA]))
    p.add_argument("--budget", type=int, default=BUDGET, help="epochs per run (64 x 27)")
    args = p.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [t for t in tasks if t not in TASKS] + [m for m in methods
                                                  if m not in OURS and m not in OPTUNA]
    if bad:
        p.error(f"unknown task or method {bad}; tasks: {', '.join(TASKS)}; methods: "
                f"{', '.join([*OURS, *OPTUNA])}")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    print(f"search_quality: optuna {optuna.__version__}, budget {args.budget} epochs "
          f"({args.budget // N_EPOCHS} x {N_EPOCHS}), load {os.getloadavg()[0]:.2f}")
    summaries = {}
    for name in tasks:
        n = args.digits_seeds if name == "digits" else args.seeds
        seeds = list(range(args.first_seed, args.first_seed + n))
        note = "" if n >= 20 else "  (fewer than the 20 of the spec)"
        print(f"\n== {name}: {n} seeds ({seeds[0]}..{seeds[-1]}){note}", flush=True)
        runs = run_task(TASKS[name], methods, seeds, args.budget,
                        lambda line: print(line, flush=True))
        summaries[name] = report(TASKS[name], runs, args.budget)
    verdicts(summaries, args.budget)
    print(f"load at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
