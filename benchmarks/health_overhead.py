"""What measuring network health costs: training with health against training without it.

Run from the repository root:

    .venv/bin/python benchmarks/health_overhead.py [--quick] [--no-study]

1. ``train_segment`` in this process (one BLAS thread, as a worker), on four workloads of the
   dashboard (the demo's digits net, a toy spirals net, moons, a larger synthetic net), in
   segments of about ``SEGMENT_SECONDS`` of training as a study's runner sizes them, three ways
   side by side: health off (``health_every=0``), the default cadence (``"auto"``: the
   segment's first and last epochs and as often as ``HEALTH_SHARE`` of the training time allows
   in between) and every epoch (``health_every=1``). CPU seconds of this process (steadier than
   wall time on a shared machine), median of ``--repeats`` alternating rounds; ratio = with /
   without. The training itself is bitwise the same every way (checked).
2. A small study end to end (the runner as the dashboard starts it, health stored in SQLite and
   diagnosed per segment): ``$PANDA_CAVIAR_HEALTH_EVERY=0`` against the default, wall time.

Target: the default cadence costs at most +10% (``TARGET``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.data import build_dataset  # noqa: E402
from engine.nn import ModelSpec, TrainConfig, new_state, train_segment  # noqa: E402
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


def train(data, spec, config, n_epochs: int, per_segment: int, every):
    """CPU seconds of n_epochs in segments of per_segment epochs; the final state; measured."""
    state, measured = new_state(spec, 0), 0
    c0 = time.process_time()
    done = 0
    while done < n_epochs:
        n = min(per_segment, n_epochs - done)
        result = train_segment(state, config, data, n, health_every=every)
        state, done = result.state, done + n
        measured += sum("health" in m for m in result.metrics)
    return time.process_time() - c0, state, measured


def segment_benchmark(quick: bool, repeats: int) -> list[float]:
    print(f"1. train_segment, segments of ~{SEGMENT_SECONDS:g} s of training; CPU seconds, "
          f"median of {repeats}; auto = health on ~{100 * HEALTH_SHARE:.0f}% of the time")
    print(f"   {'workload':28s} {'ms/epoch':>8s} {'epochs':>6s} {'off s':>6s} {'auto s':>6s} "
          f"{'every s':>7s} {'auto/off':>8s} {'every/off':>9s} {'measured auto/every':>20s}")
    ratios = []
    with threadpool_limits(limits=1):
        for name, (dataset, fixed) in WORKLOADS.items():
            data, spec, config = setup(dataset, fixed)
            probe, _, _ = train(data, spec, config, 3, 3, 0)
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
            auto, every = sec["auto"] / sec["off"], sec["every"] / sec["off"]
            ratios.append(auto)
            print(f"   {name:28s} {1000 * sec['off'] / n_epochs:8.2f} {n_epochs:6d} "
                  f"{sec['off']:6.2f} {sec['auto']:6.2f} {sec['every']:7.2f} {auto:8.3f} "
                  f"{every:9.3f} {runs['auto'][0][2]:>11d}/{runs['every'][0][2]}", flush=True)
    return ratios


def run_study(db: Path, env_value: str | None, n_trials: int, n_epochs: int) -> tuple[float, int]:
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
    code = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.STDOUT).returncode
    elapsed = time.perf_counter() - t0
    assert code == 0
    conn = connect(db)
    measured = sum("health" in m for t in store.list_trials(conn, study_id)
                   for m in store.trial_metrics(conn, t["id"]))
    conn.close()
    return elapsed, measured


def study_benchmark(quick: bool, repeats: int) -> float:
    n_trials, n_epochs = (2, 20) if quick else (4, 60)
    print(f"2. a study end to end: {n_trials} trials x {n_epochs} epochs on digits, 1 worker; "
          f"wall seconds (runner start to exit), median of {repeats}")
    runs: dict[str, list] = {"off": [], "auto": []}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        for r in range(repeats):
            for mode in (("off", "auto") if r % 2 == 0 else ("auto", "off")):
                runs[mode].append(run_study(db, "0" if mode == "off" else None, n_trials,
                                            n_epochs))
    off = statistics.median(s for s, _ in runs["off"])
    auto = statistics.median(s for s, _ in runs["auto"])
    print(f"   off {off:.2f} s   auto {auto:.2f} s ({runs['auto'][0][1]} of "
          f"{n_trials * n_epochs} epochs measured)   ratio {auto / off:.3f}", flush=True)
    return auto / off


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of each (median)")
    parser.add_argument("--no-study", action="store_true", help="skip the end-to-end study")
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
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
