"""Stacked population training against one trial at a time, side by side in one process.

Run from the repository root (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, set on this machine, hold
OpenBLAS to an older kernel; this command unsets them for itself only, and the script prints
the kernel that ran):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/stacked.py
    (--quick: 16 trials a case, a smoke run, not a measurement)

Cases (random hyperparameters per trial: learning rate log-uniform, L2, Adam's beta1, BN
momentum; float32; one BLAS thread):
  (a) 64 trials of 2-16-16-2 (no batch norm, Adam) on moons, 1,000 points, batch 32, 20 epochs;
  (b) 64 trials of 64-64-10 with batch norm and Adam on digits, batch 64, 27 epochs;
  (c) a random search over the hidden width 8..256 (log-uniform, one layer, batch norm, Adam) on
      digits, 64 trials, batch 64, 27 epochs; stacked three ways: padded to the widest member
      in one stack, bucketed by width (powers of two, each bucket padded to its widest), and
      "by rule" as the study runner does (the buckets where stacking pays, `engine.study.
      stacking.pays`, as stacks of at most `stacking.cache_limit` members one after the
      other; the others alone). Cases (a) and (b) print "padded" (one stack) and "by rule".
Columns: trials/s one at a time (`train_segment` per trial), stacked (`train_stacked`, one call
for the whole case or per bucket), their ratio, and two GEMM-only bounds, both timed in this run
in CPU seconds: "solo GEMMs" (each trial's 2-D products back to back, `_common.GemmBound`: what
one-at-a-time training could reach if nothing but its products cost) and "stack GEMMs" (the
batched products one stacked step makes, recorded from a real step and replayed,
`_stacked_profile.stack_gemm_seconds`): the stacked run's share of the latter is how close it
is to its own matrix products. Every figure is the best of `--repeat` rounds (default 2),
solo and stacked alternating, per CPU second of this process (one thread: wall-clock time on
an idle machine; the best wall-clock ratio is printed beside). Minor page faults per step of
the stacked run (whole calls: mostly each call's setup touching its fresh workspace); the
allocation line measures a steady step itself: its page faults, the largest transient bytes
NumPy allocated inside it (tracemalloc: the iterator buffers of broadcasting ufuncs) and the
bytes it kept (0: nothing grows). `--profile a` prints the heaviest NumPy calls of case (a)'s
stacked run by line; `--pays` prints the batch x width table behind the runner's rule (16
members, 3 epochs each); `--sizes 8,16,32,64` prints, per case, trials/s of the case trained
as consecutive stacks of each size (case (c): each width bucket split so) against one at a
time in the same rounds. Targets: (a) >= 8x, (b) >= 2.5x,
(c) >= 1.5x (the best of the ways).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from _common import GemmBound, blas_report, timed  # noqa: E402
from _stacked_profile import op_profile, stack_gemm_seconds, step_allocation  # noqa: E402

from engine.data import DatasetSpec, build_dataset  # noqa: E402
from engine.nn import ModelSpec, TrainConfig, new_state, train_segment  # noqa: E402
from engine.nn.stacked import train_stacked  # noqa: E402
from engine.nn.train import one_blas_thread  # noqa: E402

TARGETS = {"a": 8.0, "b": 2.5, "c": 1.5}


def configs(n: int, batch: int, seed: int) -> list[TrainConfig]:
    rng = np.random.default_rng(seed)
    return [
        TrainConfig(
            learning_rate=float(10 ** rng.uniform(-4, -1.5)), optimizer="adam",
            batch_size=batch, l2=float(10 ** rng.uniform(-6, -2)),
            beta1=float(1 - 10 ** rng.uniform(-2, -0.7)), bn_momentum=float(rng.uniform(0.8, 0.99)),
        )
        for _ in range(n)
    ]


def case_members(name: str, n: int) -> tuple[list[ModelSpec], list[TrainConfig], object, int]:
    if name == "a":
        data = build_dataset(DatasetSpec(kind="moons", n_samples=1000, noise=0.2))
        specs = [ModelSpec(2, (16, 16), 2, batch_norm=False)] * n
        return specs, configs(n, 32, 1), data, 20
    data = build_dataset(DatasetSpec(kind="digits"))
    if name == "b":
        return [ModelSpec(64, (64,), 10)] * n, configs(n, 64, 2), data, 27
    rng = np.random.default_rng(3)
    widths = np.round(np.exp(rng.uniform(np.log(8), np.log(256), n))).astype(int)
    specs = [ModelSpec(64, (int(w),), 10) for w in widths]
    return specs, configs(n, 64, 3), data, 27


def buckets(specs: list[ModelSpec]) -> list[list[int]]:
    """Member indices grouped by the power of two at or above their widest layer."""
    groups: dict[int, list[int]] = {}
    for j, spec in enumerate(specs):
        groups.setdefault(int(np.ceil(np.log2(max(spec.hidden)))), []).append(j)
    return [groups[k] for k in sorted(groups)]


def chunked(groups: list[list[int]], size: int) -> list[list[int]]:
    """Each group split into consecutive stacks of at most ``size`` members."""
    return [g[i:i + size] for g in groups for i in range(0, len(g), size)]


def by_rule(specs: list[ModelSpec], cfgs: list[TrainConfig]) -> list[list[int]]:
    """What the study runner does: the buckets where stacking pays as stacks of at most the
    cache limit (one after the other), the rest alone."""
    from engine.study.stacking import cache_limit, pays

    groups = []
    for g in buckets(specs):
        model = {**specs[g[0]].to_dict(), "hidden": list(specs[g[0]].hidden)}
        config = {"batch_size": cfgs[g[0]].batch_size, "optimizer": cfgs[g[0]].optimizer}
        if pays(model, config):
            groups.extend(chunked([g], cache_limit(model, config)))
        else:
            groups.extend([k] for k in g)
    return groups


def gemm_seconds(specs, data, batch: int, epochs: int) -> float:
    """GEMM-only CPU seconds of training every member ``epochs`` epochs one at a time."""
    n_train = len(data.X_train)
    steps = epochs * -(-n_train // batch)
    total = 0.0
    by_layers: dict[tuple, int] = {}
    for s in specs:
        layers = (s.n_inputs, *s.hidden, s.n_outputs)
        by_layers[layers] = by_layers.get(layers, 0) + 1
    for layers, count in by_layers.items():
        bound = GemmBound(min(batch, n_train), layers)
        bound.run(2)
        total += count * timed(lambda b=bound: b.run(steps))[1]
    return total


def run_case(name: str, n: int, repeat: int) -> dict:
    specs, cfgs, data, epochs = case_members(name, n)
    states = [new_state(s, 100 + j) for j, s in enumerate(specs)]
    n_steps = epochs * -(-len(data.X_train) // cfgs[0].batch_size)

    def solo() -> None:
        for state, config in zip(states, cfgs):
            train_segment(state, config, data, epochs)

    def stacked(groups: list[list[int]]) -> None:
        for g in groups:
            if len(g) == 1:  # alone, as the runner trains a trial where stacking does not pay
                train_segment(states[g[0]], cfgs[g[0]], data, epochs)
            else:
                train_stacked([states[j] for j in g], [cfgs[j] for j in g], data, epochs)

    ways = {"padded": [list(range(n))]}
    if name == "c":
        ways["bucketed"] = buckets(specs)
    ways["by rule"] = by_rule(specs, cfgs)
    out: dict = {"name": name, "n": n, "epochs": epochs, "n_steps": n_steps}
    with one_blas_thread():
        train_stacked(states[:2], cfgs[:2], data, 1)  # warm up both paths
        train_segment(states[0], cfgs[0], data, 1)
        for _ in range(repeat):  # alternate, keep the best of each
            runs = [("solo", solo)] + [(way, lambda g=g: stacked(g)) for way, g in ways.items()]
            for way, fn in runs:
                got = timed(fn)
                out[way] = tuple(map(min, zip(out.get(way, got), got)))
        for way, groups in ways.items():
            wall, cpu, faults = out[way]
            out[way] = (wall, cpu, faults / (n_steps * len(groups)))
        out["gemm"] = min(gemm_seconds(specs, data, cfgs[0].batch_size, epochs)
                          for _ in range(repeat))
        out["stack_gemm"] = {
            way: min(sum(stack_gemm_seconds([specs[j] for j in g], [cfgs[j] for j in g], data,
                                            n_steps) for g in groups) for _ in range(repeat))
            for way, groups in ways.items()
        }
        out["steady"] = step_allocation(specs, cfgs, data)  # the one stack of "padded"
    out["groups"] = {way: [len(g) for g in groups] for way, groups in ways.items()}
    return out


def report(r: dict) -> list[str]:
    n = r["n"]
    solo_wall, solo_cpu, _ = r["solo"]
    lines, best = [], 0.0
    for way in ("padded", "bucketed", "by rule"):
        if way not in r:
            continue
        wall, cpu, faults = r[way]
        ratio, wall_ratio = solo_cpu / cpu, solo_wall / wall
        best = max(best, ratio)
        stack_gemm = r["stack_gemm"][way]
        lines.append(
            f"({r['name']}) {way:8s} solo {n / solo_cpu:7.1f} trials/s  stacked {n / cpu:7.1f} "
            f"trials/s  ratio {ratio:5.2f}x (wall {wall_ratio:4.2f}x)  solo GEMMs "
            f"{n / r['gemm']:7.1f} trials/s (solo at {r['gemm'] / solo_cpu:4.0%} of it)  "
            f"stack GEMMs {n / stack_gemm:7.1f} trials/s (stacked at {stack_gemm / cpu:4.0%} "
            f"of it)  faults/step {faults:.2f}  stacks {r['groups'][way]}"
        )
    steady, per_call = r["steady"], r["padded"][2] * r["n_steps"]
    lines.append(
        f"({r['name']}) allocation: a steady step of the padded stack {steady['faults']:.2f} "
        f"page faults, {steady['transient'] / 1024:.0f} KiB transient at most (NumPy's "
        f"iterator buffers), {steady['kept']} B kept; the padded run's {per_call:.0f} faults "
        f"are its call touching a fresh workspace (the heap the solo runs gave back)"
    )
    target = TARGETS[r["name"]]
    lines.append(f"({r['name']}) {'PASS' if best >= target else 'FAIL'}: best ratio {best:.2f}x, "
                 f"target >= {target}x")
    return lines


def _pair(states, cfgs, data, epochs: int, repeat: int) -> tuple[float, float]:
    """Best CPU seconds of (one at a time, stacked) over ``repeat`` alternating rounds."""
    solo = stacked = float("inf")
    for _ in range(repeat):
        solo = min(solo, timed(lambda: [train_segment(s, c, data, epochs)
                                        for s, c in zip(states, cfgs)])[1])
        stacked = min(stacked, timed(lambda: train_stacked(states, cfgs, data, epochs))[1])
    return solo, stacked


def pays_table(n: int, repeat: int, epochs: int = 3) -> None:
    """Stacked against one at a time over batch size x width, BN on and off, on digits: the
    measurements behind ``engine.study.stacking.PAYS_ELEMENTS``."""
    from engine.study.stacking import pays

    data = build_dataset(DatasetSpec(kind="digits"))
    print(f"{n} members of 64-W-10 (Adam), {epochs} epochs on digits; ratio = stacked trials/s "
          f"over one at a time (best of {repeat}); 'stack' = the runner's rule says it pays")
    with one_blas_thread():
        for bn in (True, False):
            for batch in (16, 64, 256):
                for width in (8, 16, 32, 64, 128, 256):
                    specs = [ModelSpec(64, (width,), 10, batch_norm=bn)] * n
                    cfgs = configs(n, batch, 5)
                    states = [new_state(s, j) for j, s in enumerate(specs)]
                    train_stacked(states[:2], cfgs[:2], data, 1)
                    solo, stacked = _pair(states, cfgs, data, epochs, repeat)
                    rule = "stack" if pays({"hidden": [width]}, {"batch_size": batch}) else "alone"
                    print(f"  bn={bn!s:5s} batch {batch:3d} width {width:3d} (rows x width "
                          f"{batch * width:6,d}): ratio {solo / stacked:5.2f}x  {rule}",
                          flush=True)


def sizes_table(name: str, n: int, repeat: int, sizes: list[int]) -> None:
    """Trials/s of the case trained as consecutive stacks of each size (case (c): each width
    bucket split so), against one at a time in the same rounds."""
    specs, cfgs, data, epochs = case_members(name, n)
    states = [new_state(s, 100 + j) for j, s in enumerate(specs)]
    base = buckets(specs) if name == "c" else [list(range(n))]

    def run(groups: list[list[int]]) -> None:
        for g in groups:
            if len(g) == 1:
                train_segment(states[g[0]], cfgs[g[0]], data, epochs)
            else:
                train_stacked([states[j] for j in g], [cfgs[j] for j in g], data, epochs)

    ways = [("solo", [[j] for j in range(n)])] + [(s, chunked(base, s)) for s in sizes]
    best: dict = {}
    with one_blas_thread():
        train_stacked(states[:2], cfgs[:2], data, 1)
        train_segment(states[0], cfgs[0], data, 1)
        for _ in range(repeat):
            for key, groups in ways:
                best[key] = min(best.get(key, float("inf")), timed(lambda g=groups: run(g))[1])
    solo = best["solo"]
    print(f"({name}) solo {n / solo:7.1f} trials/s", flush=True)
    for key, groups in ways[1:]:
        print(f"({name}) stacks of {key:3d}: {n / best[key]:7.1f} trials/s  ratio "
              f"{solo / best[key]:5.2f}x  stacks {[len(g) for g in groups]}", flush=True)


def profile(name: str, n: int) -> None:
    specs, cfgs, data, epochs = case_members(name, n)
    states = [new_state(s, 100 + j) for j, s in enumerate(specs)]
    with one_blas_thread():
        train_stacked(states[:2], cfgs[:2], data, 1)
        c0 = time.process_time()
        train_stacked(states, cfgs, data, epochs)
        plain = time.process_time() - c0
        rows = op_profile(lambda: train_stacked(states, cfgs, data, epochs))
    timed_total = sum(sec for _, sec, _ in rows)
    print(f"({name}) stacked run {plain:.3f} s CPU without the timers; NumPy calls (timed) "
          f"{timed_total:.3f} s; the heaviest lines:")
    for key, sec, calls in rows[:30]:
        print(f"  {key:38s} {sec * 1e3:8.1f} ms {calls:7d} calls {sec / calls * 1e6:8.1f} us/call")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 trials a case (smoke run)")
    parser.add_argument("--cases", default="abc", help="which cases (default abc)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best is kept")
    parser.add_argument("--profile", metavar="CASE", help="per-line NumPy profile of one case")
    parser.add_argument("--pays", action="store_true",
                        help="the batch x width table behind the runner's stacking rule")
    parser.add_argument("--sizes", help="stack sizes, e.g. 8,16,32,64: trials/s of each")
    args = parser.parse_args()
    n = 16 if args.quick else 64
    print(f"BLAS: {blas_report()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.pays:
        pays_table(16, max(1, args.repeat))
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0
    if args.profile:
        profile(args.profile, n)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0
    if args.sizes:
        for name in args.cases:
            sizes_table(name, n, max(1, args.repeat), [int(x) for x in args.sizes.split(",")])
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0
    for name in args.cases:
        for line in report(run_case(name, n, max(1, args.repeat))):
            print(line, flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
