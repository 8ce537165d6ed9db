"""What measuring network health costs: training with health against training without it.

Run from the repository root, niced (the machine is shared):

    nice -n 10 .venv/bin/python benchmarks/health_overhead.py [--quick] [--no-study] [--profile]

1. ``train_segment`` in this process (one BLAS thread, as a worker), on four workloads of the
   dashboard (the demo's digits net, a toy spirals net, moons, a larger synthetic net), in
   segments of about ``SEGMENT_SECONDS`` of training as a study's runner sizes them, three ways:
   health off (``health_every=0``), the default cadence (``"auto"``: the segment's first and
   last epochs and as often as ``HEALTH_SHARE`` of the training time allows in between) and
   every epoch (``health_every=1``). CPU seconds of this process; the three run back to back in
   each of ``--repeats`` rounds (order alternating), each round gives a ratio with / without,
   and the figure is the median of the rounds' ratios (a paired comparison: a round's three
   runs see the same load). The training itself is bitwise the same every way (checked).
2. A small study end to end (the runner as the dashboard starts it, health stored in SQLite and
   diagnosed per segment): ``$PANDA_CAVIAR_HEALTH_EVERY=0`` against the default. CPU seconds of
   the runner and its worker processes (the workers are polled with psutil: the fork server
   that owns them is never reaped, so the OS's child times miss them), rounds off/auto back to
   back, the median of the rounds' ratios; wall time printed beside it for reference.
3. ``--profile``: cProfile of ``epoch_health`` on the demo workload, the top functions.

Target: the default cadence costs at most +10% (``TARGET``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.data import build_dataset  # noqa: E402
from engine.nn import ModelSpec, TrainConfig, new_state, train_segment  # noqa: E402
from engine.nn import train as train_module  # noqa: E402
from engine.nn.health import AUTO, HEALTH_SHARE  # noqa: E402
from engine.run.launch import runner_command  # noqa: E402
from engine.search import trial_config  # noqa: E402
from engine.storage import studies as store  # noqa: E402
from engine.storage.db import connect  # noqa: E402
from engine.study.facade import new_study  # noqa: E402

TARGET = 0.10
SEGMENT_SECONDS = 0.5
WORKLOADS = {
    "digits 64-64 BN b32 (demo)": ({"kind": "digits", "seed": 0},
                                   {"hidden_units": 64, "batch_size": 32}),
    "spirals 32-32 BN b32 (toy)": ({"kind": "spirals", "n_samples": 400, "n_classes": 3,
                                    "noise": 0.2, "seed": 0},
                                   {"hidden_units": 32, "batch_size": 32}),
    "moons 32-32 BN b64": ({"kind": "moons", "n_samples": 500, "seed": 0},
                           {"hidden_units": 32, "batch_size": 64}),
    "synthetic 128-128 BN b64": ({"kind": "synthetic", "n_samples": 6000, "n_features": 20,
                                  "n_classes": 3, "seed": 0},
                                 {"hidden_units": 128, "batch_size": 64}),
}
MODES = {"off": 0, "auto": AUTO, "every": 1}


def setup(dataset: dict, fixed: dict):
    data = build_dataset(dataset)
    params = {"hidden_layers": 2, "batch_norm": True, "optimizer": "adam",
              "learning_rate": 1e-3, "n_epochs": 1, **fixed}
    model, config, _ = trial_config(params, data.X_train.shape[1], data.n_classes)
    return data, ModelSpec(**model), TrainConfig(**config)


class HealthClock:
    """Wraps ``engine.nn.train.epoch_health`` to add up the CPU seconds spent inside it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.inner = train_module.epoch_health

    def __call__(self, *args, **kwargs):
        c0 = time.process_time()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.process_time() - c0


def train(data, spec, config, n_epochs: int, per_segment: int, every):
    """(CPU seconds of n_epochs in segments of per_segment epochs, the final state, epochs
    measured, CPU seconds of those inside epoch_health)."""
    state, measured = new_state(spec, 0), 0
    clock = HealthClock()
    train_module.epoch_health = clock
    try:
        c0 = time.process_time()
        done = 0
        while done < n_epochs:
            n = min(per_segment, n_epochs - done)
            result = train_segment(state, config, data, n, health_every=every)
            state, done = result.state, done + n
            measured += sum("health" in m for m in result.metrics)
        total = time.process_time() - c0
    finally:
        train_module.epoch_health = clock.inner
    return total, state, measured, clock.seconds


def segment_benchmark(quick: bool, repeats: int) -> list[float]:
    print(f"1. train_segment, segments of ~{SEGMENT_SECONDS:g} s of training, CPU seconds, "
          f"{repeats} rounds; auto = health on ~{100 * HEALTH_SHARE:.0f}% of the time.\n"
          "   in-run: CPU inside epoch_health / the rest of the same run (median of rounds; "
          "immune to load drift);\n   total: a round's run with health / its run without "
          "(median of rounds; min..max shows the noise)")
    print(f"   {'workload':28s} {'ms/epoch':>8s} {'epochs':>6s} {'measured':>9s} "
          f"{'in-run auto':>11s} {'every':>7s} {'total auto/off':>14s} {'(min..max)':>11s} "
          f"{'every/off':>9s}")
    ratios = []
    with threadpool_limits(limits=1):
        for name, (dataset, fixed) in WORKLOADS.items():
            data, spec, config = setup(dataset, fixed)
            probe = train(data, spec, config, 3, 3, 0)[0]
            epoch_s = probe / 3
            per_segment = max(1, round(SEGMENT_SECONDS / epoch_s))
            n_epochs = max(3, round((0.6 if quick else 2.0) / epoch_s))
            runs = {mode: [] for mode in MODES}
            for r in range(repeats):
                order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
                for mode in order:
                    runs[mode].append(train(data, spec, config, n_epochs, per_segment,
                                            MODES[mode]))
            sec = {mode: statistics.median(run[0] for run in runs[mode]) for mode in MODES}
            same = all(runs["off"][0][1].params[k].tobytes() == runs[m][0][1].params[k].tobytes()
                       for m in MODES for k in runs["off"][0][1].params)
            assert same, f"{name}: health changed the training"
            paired = {m: [runs[m][r][0] / runs["off"][r][0] for r in range(repeats)]
                      for m in ("auto", "every")}
            # in-run: CPU inside epoch_health against the rest of the same run (no drift)
            share = {m: statistics.median(run[3] / (run[0] - run[3]) for run in runs[m])
                     for m in ("auto", "every")}
            auto, every = statistics.median(paired["auto"]), statistics.median(paired["every"])
            ratios.append(1 + share["auto"])
            span = f"{min(paired['auto']):.2f}..{max(paired['auto']):.2f}"
            print(f"   {name:28s} {1000 * sec['off'] / n_epochs:8.2f} {n_epochs:6d} "
                  f"{runs['auto'][0][2]:>4d}/{runs['every'][0][2]:<4d} "
                  f"{100 * share['auto']:+10.1f}% {100 * share['every']:+6.1f}% {auto:14.3f} "
                  f"{span:>11s} {every:9.3f}", flush=True)
    return ratios


def tree_cpu(process: subprocess.Popen, poll: float = 0.02) -> tuple[float, float]:
    """Wait for ``process``; (its own CPU seconds, from the OS, exact; those of every
    descendant, each taken at its last sighting by psutil, polled every ``poll`` s)."""
    seen: dict[tuple[int, float], float] = {}
    root = psutil.Process(process.pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    while process.poll() is None:
        try:
            children = root.children(recursive=True)
        except psutil.NoSuchProcess:
            break
        for child in children:
            try:
                with child.oneshot():
                    times = child.cpu_times()
                    seen[(child.pid, child.create_time())] = times.user + times.system
            except psutil.NoSuchProcess:
                pass
        time.sleep(poll)
    process.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return own, sum(seen.values())


def run_study(db: Path, env_value: str | None, n_trials: int,
              n_epochs: int) -> tuple[float, float, int, float]:
    """(CPU seconds of the runner and its workers, wall seconds, epochs measured, CPU seconds
    of the workers alone)."""
    study_id = new_study(db, name="health", space={"params": {
        "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "scale": "log"}},
        "fixed": {"hidden_layers": 2, "hidden_units": 64, "batch_size": 32}},
        sampler={"kind": "random"}, dataset={"kind": "digits", "seed": 0},
        n_trials=n_trials, seed=1, scheduler={"kind": "full_budget", "n_epochs": n_epochs},
        workers=1)
    argv, env = runner_command(["run", "--study", str(study_id)], db_path=db)
    env = {k: v for k, v in env.items() if k != "PANDA_CAVIAR_HEALTH_EVERY"}
    if env_value is not None:
        env["PANDA_CAVIAR_HEALTH_EVERY"] = env_value
    t0 = time.perf_counter()
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    own, workers = tree_cpu(process)
    elapsed = time.perf_counter() - t0
    assert process.returncode == 0
    conn = connect(db)
    trials = store.list_trials(conn, study_id)
    measured = sum("health" in m for t in trials for m in store.trial_metrics(conn, t["id"]))
    conn.close()
    return own + workers, elapsed, measured, workers


def study_benchmark(quick: bool, repeats: int) -> float:
    n_trials, n_epochs = (2, 20) if quick else (4, 60)
    print(f"2. a study end to end: {n_trials} trials x {n_epochs} epochs on digits, 1 worker; "
          f"CPU seconds of the runner and its workers; ratio: median over {repeats} rounds")
    runs: dict[str, list] = {"off": [], "auto": []}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        for r in range(repeats):
            for mode in (("off", "auto") if r % 2 == 0 else ("auto", "off")):
                runs[mode].append(run_study(db, "0" if mode == "off" else None, n_trials,
                                            n_epochs))
    paired = [a[0] / o[0] for a, o in zip(runs["auto"], runs["off"], strict=True)]
    paired_workers = [a[3] / o[3] for a, o in zip(runs["auto"], runs["off"], strict=True)]
    ratio = statistics.median(paired)
    cpu = {m: statistics.median(x[0] for x in runs[m]) for m in runs}
    work = {m: statistics.median(x[3] for x in runs[m]) for m in runs}
    wall = {m: statistics.median(x[1] for x in runs[m]) for m in runs}
    measured = [x[2] for x in runs["auto"]]
    print(f"   CPU, runner + workers: off {cpu['off']:.2f} s  auto {cpu['auto']:.2f} s   ratio "
          f"{ratio:.3f} ({min(paired):.2f}..{max(paired):.2f})\n"
          f"   CPU, workers alone:    off {work['off']:.2f} s  auto {work['auto']:.2f} s   "
          f"ratio {statistics.median(paired_workers):.3f} "
          f"({min(paired_workers):.2f}..{max(paired_workers):.2f})\n"
          f"   wall off {wall['off']:.2f} s  auto {wall['auto']:.2f} s; epochs measured "
          f"{min(measured)}..{max(measured)} of {n_trials * n_epochs}", flush=True)
    return ratio


def profile_health(top: int = 15) -> None:
    """cProfile of epoch_health on the demo workload's model after a few epochs."""
    import cProfile
    import pstats

    from engine.nn.health import epoch_health

    data, spec, config = setup(*WORKLOADS["digits 64-64 BN b32 (demo)"])
    with threadpool_limits(limits=1):
        prev = train_segment(new_state(spec, 0), config, data, 2).state
        state = train_segment(prev, config, data, 1).state
        n = 500
        c0 = time.process_time()
        for _ in range(n):
            epoch_health(spec, state.params, state.buffers, data.X_val, data.y_val,
                         prev_params=prev.params)
        per_call = (time.process_time() - c0) / n
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            epoch_health(spec, state.params, state.buffers, data.X_val, data.y_val,
                         prev_params=prev.params)
        profiler.disable()
    print(f"3. epoch_health on the demo net: {1e3 * per_call:.3f} ms CPU a call (unprofiled); "
          f"cProfile of {n} calls, by own time:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of each (median)")
    parser.add_argument("--no-study", action="store_true", help="skip the end-to-end study")
    parser.add_argument("--profile", action="store_true", help="cProfile epoch_health too")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          "(other processes competing for the cores distort these figures)", flush=True)
    ratios = segment_benchmark(args.quick, args.repeats)
    worst = max(ratios)
    verdicts = [f"{'PASS' if worst <= 1 + TARGET else 'FAIL'}: default cadence, worst workload "
                f"{100 * (worst - 1):+.1f}% (target <= +{100 * TARGET:.0f}%)"]
    if not args.no_study:
        ratio = study_benchmark(args.quick, 2 if args.quick else args.repeats)
        verdicts.append(f"{'PASS' if ratio <= 1 + TARGET else 'FAIL'}: study end to end "
                        f"{100 * (ratio - 1):+.1f}% (target <= +{100 * TARGET:.0f}%)")
    if args.profile:
        profile_health()
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
