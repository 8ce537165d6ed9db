"""Shared helpers for the benchmarks: BLAS report, thread limits, timing, page faults, and a
study's runner run as the dashboard starts it.

Nothing here installs anything or changes the environment; a benchmark that wants another BLAS
kernel says so in its own command line (see `engine_vs_torch.py`).
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info


def blas_report() -> str:
    """The BLAS libraries NumPy loaded: internal API, kernel architecture, version, threads."""
    lines = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        lines.append(
            f"{lib.get('internal_api')} {lib.get('version')} "
            f"kernel={lib.get('architecture', '?')} threads={lib.get('num_threads')} "
            f"({lib.get('filepath', '?').rsplit('/', 1)[-1]})"
        )
    return "; ".join(lines) or "no BLAS found by threadpoolctl"


def minor_faults() -> int:
    """Minor page faults of this process so far (first touches of fresh pages)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def timed(fn: Callable[[], object]) -> tuple[float, float, int]:
    """Run fn once; return (wall seconds, CPU seconds of this process, minor page faults).

    On a shared machine the CPU time of a one-thread run is the steadier figure: time spent
    waiting for a core while other processes run is not counted.
    """
    f0 = minor_faults()
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return t1 - t0, c1 - c0, minor_faults() - f0


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """'min..max' of a list of rates, for the noise column."""
    return f"{min(values):,.0f}..{max(values):,.0f}"


class GemmBound:
    """Times the matrix products of one MLP step back to back with NumPy (the GEMM-only bound).

    The operands are laid out as a step would have them (transposed views for dW and dx), with
    preallocated outputs, so the time is the BLAS work and nothing else.
    """

    def __init__(self, batch: int, layers: tuple[int, ...], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        f32 = np.float32
        self.batch = batch
        self.ops: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for i in range(len(layers) - 1):
            d_in, d_out = layers[i], layers[i + 1]
            h = rng.standard_normal((batch, d_in), dtype=f32)  # (N, D_in)
            w = rng.standard_normal((d_in, d_out), dtype=f32)  # (D_in, D_out)
            dout = rng.standard_normal((batch, d_out), dtype=f32)  # (N, D_out)
            self.ops.append((h, w, np.empty((batch, d_out), f32)))  # forward
            self.ops.append((h.T, dout, np.empty((d_in, d_out), f32)))  # dW
            if i > 0:
                self.ops.append((dout, w.T, np.empty((batch, d_in), f32)))  # dx
        self.flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in self.ops)

    def run(self, n_steps: int) -> float:
        """Seconds for n_steps steps' worth of GEMMs."""
        ops = self.ops
        matmul = np.matmul
        t0 = time.perf_counter()
        for _ in range(n_steps):
            for a, b, out in ops:
                matmul(a, b, out=out)
        return time.perf_counter() - t0


def run_runner(db: Path, study_id: int, env: dict[str, str] | None = None) -> dict:
    """Run study ``study_id``'s runner in the foreground exactly as the dashboard starts it
    (``engine.run.launch.runner_command``, from the repository root), its output in a log file
    beside the database as the dashboard's runners have; ``env`` is added to its environment.
    Returns {"seconds": wall seconds to the runner's exit, "launched": time.time() at launch,
    "log": the log's text}; an exit code other than 0 fails with the log."""
    from engine.run.launch import REPO_ROOT, runner_command

    argv, runner_env = runner_command(["run", "--study", str(study_id)], db_path=db)
    runner_env.update(env or {})
    log_path = Path(db).with_name(f"runner-{study_id}.log")
    with open(log_path, "w") as log:
        launched, t0 = time.time(), time.perf_counter()
        code = subprocess.Popen(argv, cwd=REPO_ROOT, env=runner_env, stdout=log,
                                stderr=subprocess.STDOUT).wait()
        seconds = time.perf_counter() - t0
    text = log_path.read_text()
    assert code == 0, text
    return {"seconds": seconds, "launched": launched, "log": text}
