"""Stacked work units for the study runner: trials of one shape trained as one computation.

When stacking is on (``StudyRunner(stack=True)`` or ``$PANDA_CAVIAR_STACK=1``), a free worker
slot takes the next started trial and every other queued trial that can share its stack
(``stack_key``: depth, activation, batch norm, optimizer, batch size and the width bucket, a
power of two), and, for a sampler that does not learn, asks new trials to fill it. The stack
holds at most ``limit`` members: ``MAX_MEMBERS``, the memory bound
(``engine.nn.stacked.max_members``, 256 MiB a unit) and a share of what is left so that every
worker gets a stack. One segment trains every member the same number of epochs (the fewest any
member may train before its next milestone), and each member's result is recorded exactly as a
solo segment's (its own transaction: metrics + checkpoint + state), so the schedulers work
unchanged: an ASHA member pruned at a rung leaves (the next stack is formed from the trials
still queued), a PBT population paused at a round boundary trains on as one stack after the
round, and a runner killed mid-stack re-runs only the members whose segment was not committed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from engine.study.trials import TrialRun, segment_epochs

MAX_MEMBERS = 64


@dataclass
class Stack:
    """The runs of one stacked work unit (what ``Slots`` carries for it)."""

    runs: list[TrialRun] = field(default_factory=list)


def stack_key(run: TrialRun) -> tuple:
    """Runs with equal keys may share a stack (widths within one power of two are padded)."""
    m, c = run.model, run.config
    widest = max(m["hidden"]) if m["hidden"] else 1
    return (len(m["hidden"]), m["activation"], m["batch_norm"], m.get("dtype", "float32"),
            c["optimizer"], c["batch_size"], math.ceil(math.log2(widest)))


def limit(runner, run: TrialRun) -> int:
    """How many members a stack started by ``run`` may hold."""
    from engine.nn import ModelSpec
    from engine.nn.stacked import max_members
    from engine.run.work import dataset_for

    data = dataset_for(runner.study["dataset"], runner.csv_text)
    hidden = (2 ** stack_key(run)[-1],) * len(run.model["hidden"])
    spec = ModelSpec.from_dict({**run.model, "hidden": list(hidden)})
    bound = max_members(spec, run.config["optimizer"], run.config["batch_size"],
                        len(data.X_train), len(data.X_val))
    n = min(MAX_MEMBERS, bound)
    n_trials = runner.study["n_trials"]
    if n_trials is not None:  # share what is left between the workers
        left = len(runner.queue) + 1 + max(0, n_trials - runner.history.number)
        n = min(n, max(1, math.ceil(left / max(1, runner.slots.capacity))))
    return n


def gather(runner, conn, run: TrialRun) -> list[TrialRun]:
    """``run`` and the queued (or newly asked) runs that join its stack."""
    key, runs = stack_key(run), [run]
    n = limit(runner, run)
    for other in list(runner.queue):
        if len(runs) >= n:
            break
        if stack_key(other) == key:
            runner.queue.remove(other)
            runs.append(other)
    others = []
    while len(runs) < n and not runner.sampler.learns and runner.may_ask():
        asked = runner._ask(conn)
        if asked is None:
            break
        (runs if stack_key(asked) == key else others).append(asked)
        if len(others) >= n:
            break
    runner.queue.extend(others)  # another shape: a stack of its own later
    return runs


def submit(runner, conn, run: TrialRun) -> None:
    """Submit ``run`` alone or, with company, as a stacked work unit."""
    runs = gather(runner, conn, run)
    if len(runs) == 1:
        runner._submit(conn, run)
        return
    shares = [r.seconds_per_epoch for r in runs]
    epoch = sum(shares) if all(shares) else None  # the stack's epoch: the members' shares
    n_epochs = min(segment_epochs(replace(r, seconds_per_epoch=epoch), runner.scheduler,
                                  runner.segment_seconds, runner.max_segment_epochs)
                   for r in runs)
    members = []
    for r in runs:
        task = runner._task(conn, r)
        members.append({k: task[k] for k in ("model", "config", "checkpoint", "seed")})
        if r.state != "running":
            runner._set_state(conn, r, "running")
    task = {k: v for k, v in runner._task(conn, runs[0]).items()
            if k not in ("model", "config", "checkpoint", "seed")}
    task.update(n_epochs=n_epochs, members=members)
    runner.slots.submit(runner.stack_fn, task, Stack(runs))


def handle(runner, conn, future, stack: Stack, generation: int) -> None:
    """Record a finished stacked unit member by member (as solo segments)."""
    import traceback

    from engine.run.execution import is_worker_death

    if future.cancelled():
        runner.queue.extendleft(reversed(stack.runs))
        return
    exc = future.exception()
    if exc is not None and is_worker_death(exc):
        for run in stack.runs:
            runner._worker_died(conn, run, exc, generation)
        return
    if exc is not None:
        text = "".join(traceback.format_exception(exc))
        for run in stack.runs:
            runner._set_state(conn, run, "failed", error=text)
            runner._told(conn, run)
        return
    for run, result in zip(stack.runs, future.result()["members"]):
        try:
            runner._record(conn, result, run)
        except Exception as err:
            runner._set_state(conn, run, "failed",
                              error="".join(traceback.format_exception(err)))
            runner._told(conn, run)
