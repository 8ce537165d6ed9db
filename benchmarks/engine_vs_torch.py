"""Our NumPy engine against PyTorch on the CPU, one thread each: training samples per second.

Run from the repository root. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, set on this machine, hold
OpenBLAS to an older kernel; the benchmark unsets them in its own command only, and prints which
kernel ran:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/engine_vs_torch.py
    (add --quick for a smoke run, --profile for where our step spends its time)

PyTorch comes from `benchmarks/requirements.txt` (`.venv/bin/pip install -r
benchmarks/requirements.txt`); the benchmark installs nothing, and without torch it says so and
prints our figures only.

Measured, all float32, NumPy's BLAS and torch each limited to one thread:
- an MLP 784-256-128-10 (ReLU, batch norm, softmax cross-entropy, Adam) on 60,000 synthetic
  samples at batch sizes 64, 128 and 256, in samples/second:
  `ours`: whole epochs through the engine's public entry `train_segment` (which also shuffles,
  evaluates the small validation part and records the epoch's metrics);
  `torch`: an idiomatic loop (nn.Sequential Linear(bias=False) -> BatchNorm1d -> ReLU ...,
  CrossEntropyLoss, torch.optim.Adam, shuffled mini-batches by index from preloaded tensors,
  no DataLoader, loss.item() per step for the epoch's mean loss);
  `GEMM bound`: the samples/second a step would reach if it were only its matrix products
  (forward, dW, and dx for every layer but the first), timed back to back with NumPy in this run;
- a tiny 2-16-16-2 net on 1,000 points at batch 32, in steps/second. For 2 classes our engine
  has one sigmoid output unit, so the torch net ends in Linear(16, 1) with BCEWithLogitsLoss;
- minor page faults per step in steady state (our step should allocate nothing).

Each figure is the median of a few repetitions after a warm-up; the runners of a case are
interleaved, alternating which goes first, so load from other processes hits both alike. Rates
are given per CPU second of this process (every runner is one thread, so on an idle machine
this equals wall-clock time; on a shared one it leaves out the time spent waiting for a core,
which otherwise moves the figures by 2-3x from round to round) and per wall-clock second; the
targets are judged on the CPU-second figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # the engine, and _common beside this file

from _common import GemmBound, blas_report, median, spread, timed  # noqa: E402
from _step_profile import print_profile  # noqa: E402

from engine.data import DatasetSpec, build_dataset  # noqa: E402
from engine.nn import ModelSpec, TrainConfig, new_state, train_segment  # noqa: E402

try:
    import torch
except ImportError:  # the benchmark still prints our figures
    torch = None

MLP_LAYERS = (784, 256, 128, 10)
MLP_SAMPLES = 60_000
MLP_BATCHES = (64, 128, 256)
TINY_LAYERS = (2, 16, 16, 2)
TINY_SAMPLES = 1_000
TINY_BATCH = 32

TARGET_RATIO = 1.2  # ours/torch samples per second, every batch size
TARGET_GEMM_FRACTION = 0.65  # of the GEMM-only bound, batch >= 128
TARGET_TINY_RATIO = 5.0  # ours/torch steps per second on the tiny net
TARGET_TINY_STEP_US = 50.0
TARGET_FAULTS = 0.5  # minor page faults per step: "about zero"


class Runner(Protocol):
    def run(self, n_epochs: int) -> tuple[int, int]:
        """Train n_epochs epochs' worth; return (samples, steps) done."""


@dataclass
class Case:
    """A model on a dataset at one batch size, its runners and their measurements."""

    name: str
    layers: tuple[int, ...]
    batch: int
    n_train: int
    epochs: int  # epochs per timed repetition
    runners: dict[str, Runner] = field(default_factory=dict)
    rates: dict[str, list[float]] = field(default_factory=dict)  # samples per CPU second
    wall: dict[str, list[float]] = field(default_factory=dict)  # samples per wall second
    faults: dict[str, list[float]] = field(default_factory=dict)  # minor faults per step

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n_train / self.batch)

    @property
    def tiny(self) -> bool:
        return self.layers == TINY_LAYERS

    def time_runner(self, label: str) -> None:
        runner = self.runners[label]
        done: list[tuple[int, int]] = []
        wall, cpu, faults = timed(lambda: done.append(runner.run(self.epochs)))
        samples, steps = done[0]
        self.rates.setdefault(label, []).append(samples / cpu)
        self.wall.setdefault(label, []).append(samples / wall)
        self.faults.setdefault(label, []).append(faults / steps)

    def rate(self, label: str, wall: bool = False) -> float | None:
        """Median samples/s (steps/s for the tiny net) of a runner, or None if it did not run;
        per CPU second of this process, or per wall-clock second."""
        values = (self.wall if wall else self.rates).get(label)
        if not values:
            return None
        return median(values) / (self.batch if self.tiny else 1)

    def paired_ratio(self, a: str, b: str, wall: bool = False) -> float | None:
        """Median over the rounds of a's rate / b's rate, each pair measured back to back (so
        that a burst of load from other processes mostly cancels out)."""
        rates = self.wall if wall else self.rates
        if not rates.get(a) or not rates.get(b):
            return None
        return median([x / y for x, y in zip(rates[a], rates[b])])

    def fault_rate(self, label: str) -> float | None:
        values = self.faults.get(label)
        return median(values) if values else None


# --------------------------------------------------------------------------- runners


def _engine_model(layers: tuple[int, ...], batch: int) -> tuple[ModelSpec, TrainConfig]:
    spec = ModelSpec(n_inputs=layers[0], hidden=tuple(layers[1:-1]), n_classes=layers[-1])
    return spec, TrainConfig(learning_rate=1e-3, optimizer="adam", batch_size=batch)


class EngineEpochs:
    """Whole epochs through the public entry: train_segment(state, config, data, n_epochs),
    one segment per timed repetition (segment set-up, shuffling, validation, metrics and the
    epoch-boundary checkpoint copy included)."""

    def __init__(self, layers: tuple[int, ...], batch: int, data) -> None:
        spec, self.config = _engine_model(layers, batch)
        self.state = new_state(spec, seed=0)
        self.data = data
        self.steps_per_epoch = math.ceil(len(data.X_train) / batch)

    def run(self, n_epochs: int) -> tuple[int, int]:
        result = train_segment(self.state, self.config, self.data, n_epochs)
        if result.status != "ok":
            raise RuntimeError(f"engine training {result.status}: {result.message}")
        self.state = result.state
        return n_epochs * len(self.data.X_train), n_epochs * self.steps_per_epoch


class EngineSteps:
    """The bare step below train_segment (engine.nn.fast.Workspace.step on full batches of
    shuffled rows): what is left when the epoch overheads are taken away. Internal API: if it
    changes, this runner reports itself unavailable."""

    def __init__(self, layers: tuple[int, ...], batch: int, data) -> None:
        from engine.nn.arena import Arena
        from engine.nn.fast import Workspace, make_targets

        spec, config = _engine_model(layers, batch)
        state = new_state(spec, seed=0)
        self.arena = Arena(spec, config.optimizer)
        self.arena.load(state.params, state.buffers, state.opt_state)
        rng = np.random.default_rng(0)
        self.ws = Workspace(self.arena, batch, config=config, rng=rng)
        self.X = np.ascontiguousarray(data.X_train, dtype=spec.dtype)
        targets = make_targets(spec.n_classes, data.y_train, spec.dtype)
        n_full = len(self.X) // batch
        rows = rng.permutation(len(self.X))[: n_full * batch].reshape(n_full, batch)
        self.batches = [(r, np.ascontiguousarray(targets[r])) for r in rows]
        self.mark = np.empty((batch, 1), spec.dtype)
        self.batch = batch
        self.lr = config.learning_rate

    def run(self, n_epochs: int) -> tuple[int, int]:
        step, gather, X, mark, lr = self.ws.step, self.ws.gather, self.X, self.mark, self.lr
        total = 0.0
        for _ in range(n_epochs):
            for rows, target in self.batches:
                total += step(gather(X, rows), target, mark, lr)
        if not math.isfinite(total):
            raise RuntimeError("engine step diverged")
        steps = n_epochs * len(self.batches)
        return steps * self.batch, steps


class TorchEpochs:
    """The idiomatic PyTorch loop on the same arrays: shuffled index batches, no DataLoader."""

    def __init__(self, layers: tuple[int, ...], batch: int, X: np.ndarray, y: np.ndarray) -> None:
        torch.manual_seed(0)
        mods: list = []
        for d_in, d_out in zip(layers[:-2], layers[1:-1]):
            mods += [
                torch.nn.Linear(d_in, d_out, bias=False),  # BN's beta is the bias
                torch.nn.BatchNorm1d(d_out, eps=1e-5, momentum=0.1),  # = our bn_momentum 0.9
                torch.nn.ReLU(),
            ]
        binary = layers[-1] == 2
        mods.append(torch.nn.Linear(layers[-2], 1 if binary else layers[-1]))
        self.model = torch.nn.Sequential(*mods)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        self.X = torch.from_numpy(np.array(X, dtype=np.float32))  # own writable copy
        if binary:  # one logit, as our single sigmoid output unit
            self.loss_fn = torch.nn.BCEWithLogitsLoss()
            self.y = torch.from_numpy(y.astype(np.float32).reshape(-1, 1))
        else:
            self.loss_fn = torch.nn.CrossEntropyLoss()
            self.y = torch.from_numpy(y.astype(np.int64))
        self.batch = batch
        self.gen = torch.Generator().manual_seed(0)

    def run(self, n_epochs: int) -> tuple[int, int]:
        model, opt, loss_fn = self.model, self.opt, self.loss_fn
        X, y, bs, n = self.X, self.y, self.batch, len(self.X)
        model.train()
        for _ in range(n_epochs):
            perm = torch.randperm(n, generator=self.gen)
            total = 0.0
            for start in range(0, n, bs):
                idx = perm[start : start + bs]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(X[idx]), y[idx])
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            if not math.isfinite(total):
                raise RuntimeError("torch training diverged")
        return n_epochs * n, n_epochs * math.ceil(n / bs)


class GemmEpochs:
    """The GEMM-only bound: an epoch's worth of full-batch steps that are only the step's
    matrix products (NumPy; or torch.mm, its MKL, for context)."""

    def __init__(self, layers: tuple[int, ...], batch: int, n_train: int, use_torch=False):
        self.bound = GemmBound(batch, layers)
        self.batch = batch
        self.steps_per_epoch = max(n_train // batch, 1)
        self.torch_ops = None
        if use_torch:  # same operands and layouts (transposed views stay views)
            self.torch_ops = [tuple(torch.from_numpy(m) for m in op) for op in self.bound.ops]

    def run(self, n_epochs: int) -> tuple[int, int]:
        n_steps = n_epochs * self.steps_per_epoch
        if self.torch_ops is None:
            self.bound.run(n_steps)
        else:
            mm = torch.mm
            with torch.no_grad():
                for _ in range(n_steps):
                    for a, b, out in self.torch_ops:
                        mm(a, b, out=out)
        return n_steps * self.batch, n_steps


# --------------------------------------------------------------------------- data and cases


def make_datasets(n_mlp: int):
    """(MLP set with exactly n_mlp training rows, tiny 2-D set with 1,000), engine Datasets.

    The validation parts are kept small: train_segment evaluates them every epoch.
    """
    big = build_dataset(
        DatasetSpec(
            kind="synthetic",
            n_samples=math.ceil(n_mlp * 1.02) + 20,
            n_features=MLP_LAYERS[0],
            n_classes=MLP_LAYERS[-1],
            noise=1.0,
            val_fraction=0.01,
        )
    )
    tiny = build_dataset(
        DatasetSpec(kind="moons", n_samples=math.ceil(TINY_SAMPLES * 1.3), val_fraction=0.2)
    )
    big = dataclasses.replace(big, X_train=big.X_train[:n_mlp], y_train=big.y_train[:n_mlp])
    tiny = dataclasses.replace(
        tiny, X_train=tiny.X_train[:TINY_SAMPLES], y_train=tiny.y_train[:TINY_SAMPLES]
    )
    return big, tiny


def build_cases(quick: bool, with_torch: bool) -> list[Case]:
    n_mlp = MLP_SAMPLES // 10 if quick else MLP_SAMPLES
    big, tiny = make_datasets(n_mlp)
    cases = [Case(f"MLP batch {b}", MLP_LAYERS, b, n_mlp, 1) for b in MLP_BATCHES]
    tiny_epochs = 5 if quick else 40
    cases.append(
        Case(f"tiny batch {TINY_BATCH}", TINY_LAYERS, TINY_BATCH, TINY_SAMPLES, tiny_epochs)
    )
    for case in cases:
        data = tiny if case.tiny else big
        args = (case.layers, case.batch)
        case.runners["ours"] = EngineEpochs(*args, data)
        try:
            case.runners["ours step"] = EngineSteps(*args, data)
        except (ImportError, AttributeError, TypeError) as exc:
            print(f"the engine's step API is not available ({exc}): 'ours step' stays empty")
        if with_torch:
            case.runners["torch"] = TorchEpochs(*args, data.X_train, data.y_train)
        case.runners["gemm"] = GemmEpochs(*args, case.n_train)
        if with_torch:
            case.runners["torch gemm"] = GemmEpochs(*args, case.n_train, use_torch=True)
    return cases


def measure(cases: list[Case], reps: int) -> None:
    """Case by case: one warm-up epoch per runner, then `reps` rounds over the runners,
    alternating their order from round to round. (Case by case keeps the engine's cached
    per-thread Trainer of the case alive, as in a long run of one trial.)

    The one-thread limit is set again after each warm-up, so that it also reaches a BLAS
    library loaded lazily during the warm-up; the libraries and threads that ran are printed.
    """
    for i, case in enumerate(cases):
        for runner in case.runners.values():
            runner.run(1)
        with threadpool_limits(limits=1):
            if i == 0:
                print(f"BLAS during the timings: {blas_report()}\n")
            for rep in range(reps):
                labels = list(case.runners)
                for label in reversed(labels) if rep % 2 else labels:
                    case.time_runner(label)


# --------------------------------------------------------------------------- report

COLUMNS = (  # header, width
    ("case", 15), ("ours", 9), ("ours step", 10), ("torch", 9), ("ratio", 6),
    ("GEMM bnd", 10), ("frac", 5), ("step frac", 10), ("torch GEMM", 11),
    ("flt step", 9), ("flt seg", 8), ("flt torch", 10),
)  # fmt: skip
WALL_COLUMNS = (
    ("case", 15), ("ours", 9), ("torch", 9), ("ratio", 6), ("GEMM bnd", 10), ("frac", 5),
    ("   ours range", 20), ("   torch range", 20), ("   GEMM range", 20),
)  # fmt: skip


def _row(columns: tuple[tuple[str, int], ...], cells: list[str]) -> str:
    widths = [w for _, w in columns]
    return cells[0].ljust(widths[0]) + "".join(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))


def report(cases: list[Case]) -> int:
    """Print the tables and the targets; return the number of failed targets."""
    print("Per CPU second of this process (the steady figure on a shared machine):")
    print(_row(COLUMNS, [h for h, _ in COLUMNS]))
    print("-" * sum(w for _, w in COLUMNS))
    verdicts: list[tuple[str, bool | None]] = []
    for case in cases:
        ratio = case.paired_ratio("ours", "torch")
        frac = case.paired_ratio("ours", "gemm")
        flt = case.fault_rate("ours step")
        print(_row(COLUMNS, [
            case.name,
            *(_n(case.rate(k), ",.0f") for k in ("ours", "ours step", "torch")),
            _n(ratio, ".2f"),
            _n(case.rate("gemm"), ",.0f"),
            _n(frac, ".0%"),
            _n(case.paired_ratio("ours step", "gemm"), ".0%"),
            _n(case.rate("torch gemm"), ",.0f"),
            _n(flt, ".2f"),
            _n(case.fault_rate("ours"), ".2f"),
            _n(case.fault_rate("torch"), ".1f"),
        ]))  # fmt: skip
        checks: list[tuple[str, bool | None]] = []
        if case.tiny:
            us = 1e6 / case.rate("ours")
            checks.append(
                (
                    f"ours/torch steps/s {_n(ratio, '.2f')} >= {TARGET_TINY_RATIO}",
                    _ge(ratio, TARGET_TINY_RATIO),
                )
            )
            checks.append(
                (
                    f"{us:.0f} us/step (train_segment) <= ~{TARGET_TINY_STEP_US:.0f}",
                    us <= TARGET_TINY_STEP_US,
                )
            )
        else:
            checks.append(
                (f"ours/torch {_n(ratio, '.2f')} >= {TARGET_RATIO}", _ge(ratio, TARGET_RATIO))
            )
            if case.batch >= 128:
                checks.append(
                    (
                        f"{_n(frac, '.0%')} of the GEMM-only bound >= {TARGET_GEMM_FRACTION:.0%}",
                        _ge(frac, TARGET_GEMM_FRACTION),
                    )
                )
        checks.append(
            (
                f"{_n(flt, '.2f')} minor page faults/step in steady state (<= {TARGET_FAULTS})",
                None if flt is None else flt <= TARGET_FAULTS,
            )
        )
        verdicts += [(f"{case.name}: {text}", ok) for text, ok in checks]
    print(
        "\nMedians of samples/s (tiny net: steps/s). ours = train_segment, whole epochs; ours step "
        "= Workspace.step\nalone. ratio and frac (of the GEMM-only bound) use ours, as medians of "
        "per-round ratios. flt = minor\npage faults per step (step: steady state; seg: a segment "
        "of one epoch (tiny: 40), set-up included)."
    )
    print("\nPer wall-clock second (includes waiting for a core while other processes run):")
    print(_row(WALL_COLUMNS, [h for h, _ in WALL_COLUMNS]))
    print("-" * sum(w for _, w in WALL_COLUMNS))
    for case in cases:
        print(_row(WALL_COLUMNS, [
            case.name,
            *(_n(case.rate(k, wall=True), ",.0f") for k in ("ours", "torch")),
            _n(case.paired_ratio("ours", "torch", wall=True), ".2f"),
            _n(case.rate("gemm", wall=True), ",.0f"),
            _n(case.paired_ratio("ours", "gemm", wall=True), ".0%"),
            *(_range(case, k) for k in ("ours", "torch", "gemm")),
        ]))  # fmt: skip
    print("\nTargets (on the CPU-second figures):")
    failed = 0
    for text, ok in verdicts:
        print(f"  {'n/a ' if ok is None else 'PASS' if ok else 'FAIL'}  {text}")
        failed += ok is False
    return failed


def _ge(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


def _n(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _range(case: Case, label: str) -> str:
    values = case.wall.get(label)
    if not values:
        return "-"
    return spread([v / (case.batch if case.tiny else 1) for v in values])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 6,000 MLP samples, fewer tiny epochs, 2 repetitions",
    )
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions (default 5)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of the comparison, time the phases of our step (GEMMs, BN, loss, Adam)",
    )
    args = parser.parse_args(argv)
    reps = args.reps or (2 if args.quick else 5)

    with threadpool_limits(limits=1):
        if args.profile:
            print(f"NumPy {np.__version__}, BLAS: {blas_report()}")
            print("CPU microseconds per call, fastest of several rounds")
            for layers, batch in [(MLP_LAYERS, b) for b in MLP_BATCHES] + [(TINY_LAYERS, 32)]:
                with threadpool_limits(limits=1):  # again: reaches a lazily loaded BLAS too
                    print_profile(layers, batch)
            return 0
        if torch is not None:
            torch.set_num_threads(1)
            torch.set_num_interop_threads(1)
        print(f"NumPy {np.__version__}")
        if torch is None:
            print(
                "PyTorch is not installed, torch columns stay empty "
                "(.venv/bin/pip install -r benchmarks/requirements.txt)"
            )
        else:
            print(
                f"PyTorch {torch.__version__}: {torch.get_num_threads()} thread, "
                f"{torch.get_num_interop_threads()} interop thread, "
                f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
            )
        cases = build_cases(args.quick, torch is not None)
        print(
            f"MLP {'-'.join(map(str, MLP_LAYERS))} on {cases[0].n_train:,} samples, tiny "
            f"{'-'.join(map(str, TINY_LAYERS))} on {TINY_SAMPLES:,}; {reps} repetitions"
        )
        measure(cases, reps)
        report(cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
