"""Where the engine's training step spends its time: each phase timed on its own.

Used by `engine_vs_torch.py --profile`. It drives the pieces of one `engine.nn.fast.Workspace`
step separately (gather, each layer's forward with its GEMM apart, the loss, each layer's
backward with its GEMMs apart, the update rule, the running averages), repeating each piece in
a loop and keeping the fastest of several rounds of CPU time. Pieces run in isolation find
their data hot in cache, so their sum undershoots the whole step a little; the difference is
printed as "rest (cache misses between phases, step's own Python)". These are internal APIs of
the engine: the profile follows them, and says so when they change.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from engine.nn import ModelSpec, TrainConfig, new_state


def cpu_us(fn: Callable[[], object], budget_s: float = 0.15, rounds: int = 7) -> float:
    """Fastest per-call CPU time of fn in microseconds over `rounds` rounds."""
    fn()
    t0 = time.process_time()
    n = 0
    while time.process_time() - t0 < budget_s / rounds or n < 3:
        fn()
        n += 1
    best = float("inf")
    for _ in range(rounds):
        c0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - c0) / n)
    return best * 1e6


def profile_step(layers: tuple[int, ...], batch: int, seed: int = 0) -> list[tuple[str, float]]:
    """(phase, microseconds) rows for one Adam step of an MLP with batch norm and ReLU."""
    from engine.nn.arena import Arena
    from engine.nn.fast import Workspace, make_targets

    spec = ModelSpec(n_inputs=layers[0], hidden=tuple(layers[1:-1]), n_classes=layers[-1])
    config = TrainConfig(learning_rate=1e-3, optimizer="adam", batch_size=batch)
    state = new_state(spec, seed)
    arena = Arena(spec, "adam")
    arena.load(state.params, state.buffers, state.opt_state)
    rng = np.random.default_rng(seed)
    ws = Workspace(arena, batch, config=config, rng=rng)
    n = 20 * batch
    X = rng.standard_normal((n, layers[0]), dtype=np.float32)
    T = make_targets(spec.n_classes, rng.integers(0, layers[-1], n), spec.dtype)
    rows = rng.permutation(n)[:batch]
    target = np.ascontiguousarray(T[rows])
    mark = np.empty((batch, 1), np.float32)
    matmul = np.matmul

    out: list[tuple[str, float]] = []
    total = cpu_us(lambda: ws.step(ws.gather(X, rows), target, mark, 1e-3))
    out.append(("whole step", total))
    x = ws.gather(X, rows)
    out.append(("gather the batch (np.take)", cpu_us(lambda: ws.gather(X, rows))))
    inp = x
    for i, layer in enumerate(ws.hidden, start=1):
        whole = cpu_us(lambda layer=layer, inp=inp: layer.forward(inp, True))
        gemm = cpu_us(lambda layer=layer, inp=inp: matmul(inp, layer.W, layer.h))
        out += [(f"fwd layer {i}: GEMM", gemm), (f"fwd layer {i}: BN + ReLU", whole - gemm)]
        inp = layer.forward(inp, True)
    gemm = cpu_us(lambda: matmul(inp, ws.W, ws.s))
    bias = cpu_us(lambda: np.add(ws.s, ws.b, ws.s))
    out += [("fwd output: GEMM", gemm), ("fwd output: bias", bias)]
    ws.loss_and_grads(x, target, mark)
    scores = ws.s.copy()
    copy = cpu_us(lambda: np.copyto(ws.s, scores))
    loss = cpu_us(lambda: (np.copyto(ws.s, scores), ws._loss(target, mark, True)))
    out.append(("loss and dscores", loss - copy))
    hidden = ws.hidden
    gemm = cpu_us(lambda: matmul(ws.out_T[-1], ws.ds, ws.dW)) + cpu_us(
        lambda: matmul(ws.ds, ws.WT, hidden[-1].da)
    )
    out += [("bwd output: GEMMs", gemm), ("bwd output: db", cpu_us(
        lambda: matmul(ws.ones_row, ws.ds, ws.db)))]  # fmt: skip
    for j in range(len(hidden) - 1, -1, -1):
        layer = hidden[j]
        x_T = ws.out_T[j - 1] if j else x.T
        dx = hidden[j - 1].da if j else None
        da = layer.da.copy()
        copy = cpu_us(lambda layer=layer, da=da: np.copyto(layer.da, da))
        whole = cpu_us(
            lambda layer=layer, da=da, x_T=x_T, dx=dx: (
                np.copyto(layer.da, da),
                layer.backward(x_T, dx),
            )
        )
        gemm = cpu_us(lambda layer=layer, x_T=x_T: matmul(x_T, layer.dh, layer.dW))
        if dx is not None:
            gemm += cpu_us(lambda layer=layer, dx=dx: matmul(layer.dh, layer.WT, dx))
        out += [(f"bwd layer {j + 1}: GEMMs", gemm),
                (f"bwd layer {j + 1}: ReLU + BN", whole - copy - gemm)]  # fmt: skip
    rule = ws.rule
    adam = cpu_us(lambda: rule(arena.w, arena.g, arena.slots, 1e-3, 10, config, arena.scratch))
    out.append((f"Adam over {arena.w.size:,} parameters", adam))
    running = arena.running
    out.append(("BN running averages", cpu_us(lambda: np.multiply(running, 0.9, running)) * 2))
    out.append(("rest (cache misses between phases, step's own Python)",
                total - sum(us for _, us in out[1:])))  # fmt: skip
    return out


def print_profile(layers: tuple[int, ...], batch: int) -> None:
    """Print the phases of one step, with the GEMM share."""
    try:
        rows = profile_step(layers, batch)
    except (AttributeError, ImportError, TypeError) as exc:
        print(f"profile unavailable: the engine's step internals changed ({exc!r})")
        return
    total = rows[0][1]
    gemm = sum(us for name, us in rows if "GEMM" in name)
    print(
        f"\n{'-'.join(map(str, layers))} at batch {batch}: {total:,.1f} us/step "
        f"({batch / total * 1e6:,.0f} samples/s); GEMMs {gemm:,.1f} us = {gemm / total:.0%}"
    )
    for name, us in rows[1:]:
        print(f"  {name:<56}{us:9.1f} us {us / total:6.1%}")
