"""The table and verdicts of `search_quality.py`, and its JSON results (to split runs and merge).

A run's JSON holds, per task, method and seed, the completed results in order (epochs spent so
far, error) and the distinct values tried per important axis; `search_quality.py --merge a.json
b.json` prints the table over the union of the seeds (a seed present in two files counts once).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field


@dataclass
class Trace:
    """What one method produced on one task and seed."""

    results: list[tuple[int, float]] = field(default_factory=list)  # (epochs spent, error)
    distinct: dict[str, int] = field(default_factory=dict)  # important axis -> values tried
    trials: int = 0
    cpu_s: float = 0.0

    def best_at(self, epochs: float) -> float:
        done = [e for spent, e in self.results if spent <= epochs]
        return min(done) if done else math.inf

    def epochs_to(self, target: float) -> float:
        best = math.inf
        for spent, error in self.results:
            best = min(best, error)
            if best <= target:
                return spent
        return math.inf

    def to_dict(self) -> dict:
        return {"results": [list(r) for r in self.results], "distinct": self.distinct,
                "trials": self.trials, "cpu_s": round(self.cpu_s, 3)}

    @classmethod
    def from_dict(cls, d: dict) -> Trace:
        return cls([(int(s), float(e)) for s, e in d["results"]], dict(d["distinct"]),
                   int(d.get("trials", 0)), float(d.get("cpu_s", 0.0)))


Runs = dict[str, dict[str, dict[int, Trace]]]  # task -> method -> seed -> trace


def save(path: str, runs: Runs, meta: dict) -> None:
    with open(path, "w") as f:
        json.dump({"meta": meta, "runs": {
            task: {m: {str(s): t.to_dict() for s, t in by_seed.items()}
                   for m, by_seed in methods.items()}
            for task, methods in runs.items()}}, f)


def load(paths: list[str]) -> tuple[Runs, list[dict]]:
    """The union of the runs in ``paths`` (a seed in two files: the first kept) and their
    metadata."""
    runs: Runs = {}
    metas = []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        metas.append({"file": path, **data.get("meta", {})})
        for task, methods in data["runs"].items():
            for method, by_seed in methods.items():
                into = runs.setdefault(task, {}).setdefault(method, {})
                for seed, trace in by_seed.items():
                    into.setdefault(int(seed), Trace.from_dict(trace))
    return runs, metas


def median_or_inf(values: list[float]) -> float:
    """The median, where inf (never reached) counts: inf if half the values or more are inf."""
    return statistics.median(sorted(values))


def fmt(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:.4f}" if x < 1 else f"{x:.0f}"


def common_seeds(methods: dict[str, dict[int, Trace]]) -> list[int]:
    """The seeds every method of a task ran (medians are compared on the same seeds)."""
    sets = [set(by_seed) for by_seed in methods.values()]
    return sorted(set.intersection(*sets)) if sets else []


def report(name: str, methods: dict[str, dict[int, Trace]], budget: int, important: tuple,
           known_best: float | None) -> dict[str, dict]:
    seeds = common_seeds(methods)
    reference = methods.get("random")
    target = (median_or_inf([reference[s].best_at(budget) for s in seeds])
              if reference and seeds else math.inf)
    names = " ".join(f"{n[:12]:>12}" for n in important)
    span = f"{len(seeds)} seeds" + (f" ({seeds[0]}..{seeds[-1]})" if seeds else "")
    print(f"\n{name}, {span}: random search's final result (median best at 100%) = "
          f"{fmt(target)}" + (f"; known optimum {known_best:.3f}" if known_best is not None
                              else ""))
    print(f"  {'method':<22} {'25%':>8} {'50%':>8} {'100%':>8} {'to random':>10} {'speed-up':>8}"
          f" {'trials':>6} {'cpu s':>6}  distinct: {names}")
    summary = {}
    for method, by_seed in methods.items():
        traces = [by_seed[s] for s in seeds]
        if not traces:
            continue
        at = [median_or_inf([t.best_at(f * budget) for t in traces]) for f in (0.25, 0.5, 1.0)]
        reach = median_or_inf([t.epochs_to(target) for t in traces])
        speedup = budget / reach if reach and not math.isinf(reach) else 0.0
        counts = " ".join(f"{statistics.median(t.distinct.get(n, 0) for t in traces):>12.0f}"
                          for n in important)
        trials = statistics.median(t.trials for t in traces)
        cpu = statistics.median(t.cpu_s for t in traces)
        print(f"  {method:<22} {fmt(at[0]):>8} {fmt(at[1]):>8} {fmt(at[2]):>8} {fmt(reach):>10}"
              f" {speedup:>7.1f}x {trials:>6.0f} {cpu:>6.1f}  distinct: {counts}")
        summary[method] = {"final": at[2], "reach": reach,
                           "finals": [t.best_at(budget) for t in traces]}
    return summary


def paired(ours: list[float], theirs: list[float]) -> str:
    """Two methods' best errors at 100%, seed by seed (the same seeds in order): their means
    and on how many seeds the first is lower or higher. A median of errors that come in steps
    (the digits task's: 1/360 of the validation set) ties often; this tells such a tie apart."""
    pairs = [(a, b) for a, b in zip(ours, theirs) if math.isfinite(a) and math.isfinite(b)]
    if not pairs:
        return "no seed with both results"
    lower = sum(a < b for a, b in pairs)
    higher = sum(a > b for a, b in pairs)
    mean = (statistics.fmean(a for a, _ in pairs), statistics.fmean(b for _, b in pairs))
    return (f"mean {mean[0]:.4f} vs {mean[1]:.4f}; lower on {lower}, higher on {higher} "
            f"of {len(pairs)} seeds")


def verdicts(summaries: dict[str, dict[str, dict]], ours: list[str], synthetic: list[str],
             budget: int) -> None:
    ours = [m for m in ours if all(m in s for s in summaries.values())]
    print()
    if not summaries or not all("optuna-tpe" in s for s in summaries.values()) or not ours:
        print("PASS/FAIL: not judged (run with optuna-tpe and our methods on every task)")
        return
    beats = [m for m in ours if all(s[m]["final"] < s["optuna-tpe"]["final"]
                                    for s in summaries.values())]
    for task, s in summaries.items():
        best = min(ours, key=lambda m: s[m]["final"])
        print(f"  {task}: our best {best} {fmt(s[best]['final'])} vs optuna-tpe "
              f"{fmt(s['optuna-tpe']['final'])} (median; "
              f"{paired(s[best]['finals'], s['optuna-tpe']['finals'])})")
    print(f"{'PASS' if beats else 'FAIL'}: one of our methods beats Optuna's TPE on every task "
          f"at 100% of the budget" + (f" ({', '.join(beats)})" if beats else ""))
    synthetic = [t for t in synthetic if t in summaries]
    fast = [m for m in ours if m != "random" and synthetic and all(
        summaries[t][m]["reach"] <= budget / 4 for t in synthetic)]
    learners = [m for m in ours if m != "random"] or ours
    for t in synthetic:
        m = min(learners, key=lambda m: summaries[t][m]["reach"])
        print(f"  {t}: fastest of ours to random's final result: {m} "
              f"({fmt(summaries[t][m]['reach'])} of {budget} epochs)")
    print(f"{'PASS' if fast else 'FAIL'}: one of our methods reaches random search's final result "
          f"in <= 1/4 of the budget on the synthetic tasks ({', '.join(synthetic) or 'none run'})"
          + (f" ({', '.join(fast)})" if fast else ""))
