"""Stacked work units for the study runner: trials of one shape trained as one computation.

Stacking is on by default (``StudyRunner(stack=False)`` or ``$PANDA_CAVIAR_STACK=0`` turns it off)
for the trials where it pays (``pays``: the mini-batch rows times the widest hidden layer, rounded
up to its power of two, at most ``PAYS_ELEMENTS``). A free worker slot then takes the next started
trial and every other queued trial that can share its stack (``stack_key``: depth, activation,
batch norm, optimizer, batch size and the width bucket, a power of two), and, for a sampler that
does not learn, asks new trials to fill it; a trial where stacking does not pay trains alone.
``stacking_plan`` says which of a study's trials will stack (the designer and the study page show
it). The stack holds at most ``limit`` members: ``MAX_MEMBERS``, the memory bound
(``engine.nn.stacked.max_members``, 256 MiB a unit), the cache budget (``cache_limit``:
``engine.nn.stacked.cache_members``, the largest power of two of members whose steps fit 8 MiB, at
least 8; a larger stack's steps stream from memory: 64 x 64-64-10 with BN trained 1.55x one at a
time, two stacks of 32 1.8x) and a share of what is left so that every worker gets a stack; a
larger group trains as several stacks one after the other. One segment trains every member the same
number of epochs (the fewest any member may train before its next milestone), and each member's
result is recorded exactly as a solo segment's (its own transaction: metrics + checkpoint + state),
so the schedulers work unchanged: an ASHA member pruned at a rung leaves (the next stack is formed
from the trials still queued), a PBT population paused at a round boundary trains on as one stack
after the round, and a runner killed mid-stack re-runs only the members whose segment was not
committed.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field, replace

from engine.study.trials import TrialRun, segment_epochs

log = logging.getLogger("engine.runner")
MAX_MEMBERS = 64
# Stacking pays while a member's activations per layer (batch rows x widest hidden layer, its
# power-of-two bucket) stay this small: measured on digits with 16 members (BN on and off,
# batch 16..256, widths 8..256; `benchmarks/stacked.py --pays`), at most 8,192 the stack trained
# 1.3x to 4.7x the trials per CPU second of one at a time; at 16,384 from 0.9x to 1.4x; from
# 32,768 on, 0.9x to 1.0x (the products dominate and stacking only adds copies).
PAYS_ELEMENTS = 8192


def enabled(option: bool | None = None) -> bool:
    """Whether a runner stacks: ``option`` if given, else on unless $PANDA_CAVIAR_STACK is 0."""
    if option is not None:
        return bool(option)
    return os.environ.get("PANDA_CAVIAR_STACK", "1").strip().lower() not in ("0", "off", "no")


def bucket_width(model: dict) -> int:
    """The widest hidden layer rounded up to a power of two (what a stack pads it to)."""
    widest = max(model["hidden"]) if model["hidden"] else 1
    return 2 ** math.ceil(math.log2(widest))


def pays(model: dict, config: dict) -> bool:
    """Whether training this trial in a stack pays (see ``PAYS_ELEMENTS``)."""
    return int(config["batch_size"]) * bucket_width(model) <= PAYS_ELEMENTS


@dataclass
class Stack:
    """The runs of one stacked work unit (what ``Slots`` carries for it)."""

    runs: list[TrialRun] = field(default_factory=list)


def stack_key(run: TrialRun) -> tuple:
    """Runs with equal keys may share a stack (widths within one power of two are padded)."""
    m, c = run.model, run.config
    return (len(m["hidden"]), m["activation"], m["batch_norm"], m.get("dtype", "float32"),
            c["optimizer"], c["batch_size"], int(math.log2(bucket_width(m))))


def padded_spec(model: dict):
    """The ``ModelSpec`` a stack of ``model``'s key trains (every hidden layer at its bucket)."""
    from engine.nn import ModelSpec

    hidden = [bucket_width(model)] * len(model["hidden"])
    return ModelSpec.from_dict({**model, "hidden": hidden})


def cache_limit(model: dict, config: dict, n_train: int | None = None) -> int:
    """The members a stack of this trial's key may hold for its steps to fit the cache
    (``engine.nn.stacked.cache_members``, at the padded width)."""
    from engine.nn.stacked import cache_members

    batch = int(config["batch_size"])
    return cache_members(padded_spec(model), config["optimizer"],
                         batch if n_train is None else min(batch, n_train))


def limit(runner, run: TrialRun) -> int:
    """How many members a stack started by ``run`` may hold."""
    from engine.nn.stacked import max_members
    from engine.run.work import dataset_for

    data = dataset_for(runner.study["dataset"], runner.csv_text)
    bound = max_members(padded_spec(run.model), run.config["optimizer"],
                        run.config["batch_size"], len(data.X_train), len(data.X_val))
    n = min(MAX_MEMBERS, bound, cache_limit(run.model, run.config, len(data.X_train)))
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
    """Submit ``run`` alone (stacking would not pay, or no company) or as a stacked unit."""
    runs = gather(runner, conn, run) if pays(run.model, run.config) else [run]
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
        members[-1]["health_last"] = task.get("health_last", False)  # at its budget or rung
        if r.state != "running":
            runner._set_state(conn, r, "running")
    task = {k: v for k, v in runner._task(conn, runs[0]).items()
            if k not in ("model", "config", "checkpoint", "seed", "health_last")}
    task.update(n_epochs=n_epochs, members=members)
    log.info("study %s: trials %s train as one stack (%d members, %d epoch%s)",
             runner.study_id, _numbers([r.number for r in runs]), len(runs), n_epochs,
             "" if n_epochs == 1 else "s")
    runner.slots.submit(runner.stack_fn, task, Stack(runs))


def _numbers(numbers: list[int]) -> str:
    """Trial numbers as runs: [0, 1, 2, 5, 7, 8] -> "0-2, 5, 7-8"."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


def handle(runner, conn, future, stack: Stack, generation: int) -> None:
    """Record a finished stacked unit member by member (as solo segments: ``engine.study.tell``)."""
    import traceback

    from engine.run.execution import is_worker_death
    from engine.study import tell

    if future.cancelled():
        runner.queue.extendleft(reversed(stack.runs))
        return
    exc = future.exception()
    if exc is not None and is_worker_death(exc):
        for run in stack.runs:
            tell.worker_died(runner, conn, run, exc, generation)
        return
    if exc is not None:
        text = "".join(traceback.format_exception(exc))
        for run in stack.runs:
            runner._set_state(conn, run, "failed", error=text)
            tell.told(runner, conn, run)
        return
    for run, result in zip(stack.runs, future.result()["members"]):
        try:
            tell.record(runner, conn, result, run)
        except Exception as err:
            runner._set_state(conn, run, "failed",
                              error="".join(traceback.format_exception(err)))
            tell.told(runner, conn, run)


def stacking_plan(trials: list[tuple[dict, dict]], *, learns: bool, workers: int,
                  population: bool = False, n_trials: int | None = None,
                  on: bool | None = None) -> dict:
    """What a study's runner will stack, for the designer and the study page.

    ``trials``: (model, config) pairs (``engine.search.trial_config``'s first two) of the trials
    planned or stored; ``learns``: the sampler learns (it asks one trial at a time, so only
    trials waiting together share a stack); ``population``: population-based training (the
    population waits together at every round); ``n_trials``: the study's trials in all (default
    ``len(trials)``); ``on``: stacking enabled (default ``enabled()``).
    Returns ``{"on", "stacked", "total", "largest", "text"}``: how many of the trials pay,
    the largest stack one worker may get, and one sentence saying it."""
    on = enabled(on)
    total = len(trials)
    paying = [(m, c) for m, c in trials if pays(m, c)]
    largest = min(MAX_MEMBERS, max(1, math.ceil((n_trials or total) / max(1, workers))),
                  max((cache_limit(m, c) for m, c in paying), default=MAX_MEMBERS))
    out = {"on": on, "stacked": len(paying) if on else 0, "total": total, "largest": largest}
    if not on:
        out["text"] = "Stacking is off ($PANDA_CAVIAR_STACK=0): every trial trains alone."
        return out
    rule = f"batch size × widest hidden layer ≤ {PAYS_ELEMENTS:,}"
    if not trials:
        out["text"] = (f"Stacking is on: trials of one shape train together as one computation "
                       f"where it pays ({rule}).")
        return out
    if not paying:
        m, c = max(trials, key=lambda mc: mc[1]["batch_size"] * bucket_width(mc[0]),
                   default=({"hidden": [1]}, {"batch_size": 1}))
        out["text"] = (f"Every trial trains alone: stacking pays only while {rule} (widths "
                       f"rounded up to a power of two), and here it is up to "
                       f"{c['batch_size']} × {bucket_width(m)} = "
                       f"{c['batch_size'] * bucket_width(m):,}.")
        return out
    which = "All trials" if len(paying) == total else f"{len(paying)} of {total} trials"
    text = (f"Runs stacked: {which} ({rule}) train together with the others of their shape, "
            f"as one computation, in stacks of up to {largest} per worker")
    if population:
        text += "; the population trains as stacks round after round"
    elif learns:
        text += ("; this sampler asks one trial at a time as results arrive, so only trials "
                 "waiting together share a stack")
    if len(paying) < total:
        text += f"; the other {total - len(paying)} train alone"
    out["text"] = text + "."
    return out


PLAN_PREVIEW = 64  # trials sampled to judge a study's plan before any is asked


def stacking_plan_for(space: dict, sampler: dict, scheduler: dict, *, n_trials: int | None,
                      seed: int, workers: int, n_features: int, n_classes: int,
                      params: list[dict] | None = None, on: bool | None = None) -> dict:
    """``stacking_plan`` for a study's settings on a dataset of ``n_features`` inputs and
    ``n_classes`` classes (the members' shapes, so the cache limit is the runner's): over
    ``params`` (the trials stored so far) or, without any, the first ``PLAN_PREVIEW`` trials
    its sampler would ask."""
    from engine.search import Space, sampler_from_dict, trial_config

    space_obj, built = Space.from_dict(space), sampler_from_dict(sampler)
    if not params:
        count = min(n_trials or PLAN_PREVIEW, PLAN_PREVIEW)
        try:
            params = [space_obj.params_from_unit(u)
                      for u in built.sample_unit(space_obj, count, seed)]
        except (ValueError, LookupError):  # a sampler that cannot ask ahead: decided per trial
            params = []
    pairs = [trial_config(p, n_features, n_classes)[:2] for p in params]
    return stacking_plan(pairs, learns=built.learns, workers=workers, n_trials=n_trials,
                         population=scheduler.get("kind") == "pbt", on=on)
