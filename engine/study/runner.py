"""The study runner: the one process that runs a study's trials and writes their results.

``run_study(db_path, study_id)`` is the body of ``python -m engine run --study ID``, normally
started detached by ``engine.run.launch``. It claims the study's runner slot (and returns at once if
another live runner holds it), beats a heartbeat from a thread, and loops:

1. take intents: ``stop`` (submit nothing more; trials in flight finish their segment, are
   checkpointed and marked ``stopped``) and ``resume`` (cancel a stop in progress);
2. keep at most ``workers`` segments in flight; a segment trains one trial from its latest
   checkpoint up to its next scheduler milestone, sized from the trial's measured epoch time so
   that curves update about every ``segment_seconds``;
3. record each finished segment in one transaction (metrics + checkpoint + state), applying the
   scheduler at a rung (``pruned`` trials keep their curves);
4. with population-based training, hold trials at each round boundary until the whole
   population is there, then exploit and explore (``engine.study.population``).

A trial ends ``complete``, ``pruned``, ``diverged`` (message; nothing non-finite is stored),
``failed`` (traceback) or, after a stop, ``stopped``. A worker process that dies costs the trial
one retry from its checkpoint; after ``MAX_WORKER_DEATHS`` deaths it fails with "worker died".
A restarted runner continues every unfinished trial from its last checkpoint: metrics and
checkpoint are written together, so no epoch is lost, repeated or skipped.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sqlite3
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from engine.run.execution import (
    close_executor,
    describe_worker_death,
    is_worker_death,
    make_executor,
)
from engine.storage import studies as store
from engine.storage.blobs import get_upload
from engine.storage.db import connect, transaction
from engine.storage.runners import (
    Heartbeat,
    pending_intents,
    register_runner,
    release_runner,
    take_intents,
)
from engine.study import population

log = logging.getLogger("engine.study.runner")

SEGMENT_SECONDS = 0.5  # curves grow visibly; a segment costs ~3 ms of overhead (<1%)
MAX_WORKER_DEATHS = 3
POLL_SECONDS = 0.1
ACTIVE_STATES = ("waiting", "running", "stopped")


def trial_seed(study_seed: int, number: int) -> int:
    """The seed of a trial's initial weights and shuffling: distinct per trial, reproducible."""
    import numpy as np

    return int(np.random.SeedSequence([study_seed, number]).generate_state(1)[0])


@dataclass
class _Run:
    """What the runner tracks for one unfinished trial."""

    id: int
    number: int
    state: str
    epochs_done: int
    target: int
    deaths: int
    model: dict
    config: dict
    seed: int
    seconds_per_epoch: float | None = None


def _env_float(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


class StudyRunner:
    """One study's run loop; use ``run_study`` unless a test needs the pieces."""

    def __init__(
        self,
        db_path: str | os.PathLike,
        study_id: int,
        *,
        work_fn: Callable[[dict], dict] | None = None,
        segment_seconds: float | None = None,
        max_segment_epochs: int | None = None,
        executor_factory: Callable[[dict], Executor] | None = None,
    ):
        self.warm_up = work_fn is None
        if work_fn is None:
            from engine.run.work import run_segment as work_fn
        self.db_path, self.study_id, self.work_fn = db_path, study_id, work_fn
        self.segment_seconds = (
            segment_seconds or _env_float("PANDA_CAVIAR_SEGMENT_SECONDS") or SEGMENT_SECONDS
        )
        cap = max_segment_epochs or _env_float("PANDA_CAVIAR_MAX_SEGMENT_EPOCHS")
        self.max_segment_epochs = int(cap) if cap else None
        self.executor_factory = executor_factory or _default_executor
        self.stopping = False
        self.queue: deque[_Run] = deque()
        self.pbt = False
        self.waiting: list[_Run] = []  # PBT: at a round boundary, until the population is
        self.inflight: dict[Future, tuple[_Run, int]] = {}
        self.generation = 0
        self.executor: Executor | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def run(self) -> str:
        """Run to the end (complete / stopped / failed) and return the final stored status."""
        conn = connect(self.db_path)
        if not register_runner(conn, "study", self.study_id):
            log.warning("study %s: another live runner holds it; exiting", self.study_id)
            status = store.get_study(conn, self.study_id)["status"]
            conn.close()
            return status
        heart = Heartbeat(self.db_path, "study", self.study_id).start()
        restore = self._install_signal_handlers()
        try:
            status = self._run(conn, heart)
        except Exception as exc:
            log.exception("study %s: runner crashed", self.study_id)
            status = "failed"
            if not heart.lost.is_set():
                store.set_study_status(
                    conn, self.study_id, "failed", f"runner crashed: {type(exc).__name__}: {exc}"
                )
        finally:
            restore()
            if self.executor is not None:
                close_executor(self.executor)
            heart.stop()
            release_runner(conn, "study", self.study_id)
            conn.close()
        log.info("study %s: %s", self.study_id, status)
        _freeze_if_exiting()
        return status

    def _install_signal_handlers(self) -> Callable[[], None]:
        """SIGTERM/SIGINT become a graceful stop (only possible from the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def request_stop(signum, frame):  # noqa: ARG001
            log.info("study %s: signal %s, stopping", self.study_id, signum)
            self.stopping = True

        old = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for signum, handler in old.items():
                signal.signal(signum, handler)

        return restore

    def _run(self, conn: sqlite3.Connection, heart: Heartbeat) -> str:
        study = store.get_study(conn, self.study_id)
        store.set_study_status(conn, self.study_id, "running", "")
        self.study = study
        # Local workers' fork server starts importing NumPy, SciPy and the engine now, on the
        # other core, while this process imports what it needs (the first ~0.5 s of a study).
        self.executor = self.executor_factory(study)
        from engine.data import build_dataset
        from engine.search import FullBudget, scheduler_from_dict

        spec = study["dataset"]
        self.csv_text = get_upload(conn, spec["csv_sha256"]) if spec["kind"] == "csv" else None
        if self.warm_up:  # workers start and build the data while this process does the same
            active = sum(study["counts"][s] for s in ACTIVE_STATES)
            for _ in range(min(study["workers"], active)):
                self.executor.submit(warm_up, spec, self.csv_text)
        data = build_dataset(spec, self.csv_text)
        n_features, n_classes = data.X_train.shape[1], data.n_classes
        self.scheduler = scheduler_from_dict(study["scheduler"])
        self.full_budget = FullBudget
        self.pbt = self.scheduler.kind == "pbt"
        self.shape = (n_features, n_classes)
        self._load_queue(conn, n_features, n_classes)
        log.info(
            "study %s: %d trials to run, %d workers%s", self.study_id,
            len(self.queue) + len(self.waiting),
            study["workers"], f" on {study['executor_address']}" * bool(study["executor_address"]),
        )
        while True:
            if heart.lost.is_set():
                log.error("study %s: runner slot taken over; abandoning", self.study_id)
                return "lost"
            if self.waiting and not (self.queue or self.inflight or self.stopping):
                self._next_round(conn)
            self._obey_intents(conn)
            while not self.stopping and self.queue and len(self.inflight) < study["workers"]:
                self._submit(conn, self.queue.popleft())
            if not self.inflight:
                if self.waiting and not self.stopping:
                    continue  # PBT: the round boundary is next
                status = self._finish(conn)
                if status is not None:
                    return status
                continue  # a resume arrived while stopping
            done, _ = wait(list(self.inflight), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                run, generation = self.inflight.pop(future)
                self._handle(conn, future, run, generation)

    def _load_queue(self, conn: sqlite3.Connection, n_features: int, n_classes: int) -> None:
        from engine.search import trial_config

        held = population.waits_at_load(conn, self.study_id, self.scheduler) if self.pbt else ()
        for t in store.list_trials(conn, self.study_id, states=ACTIVE_STATES):
            model, config, _ = trial_config(t["params"], n_features, n_classes)
            model["hidden"] = list(model["hidden"])
            run = _Run(
                t["id"], t["number"], t["state"], t["epochs_done"], t["target_epochs"],
                t["attempts"], model, config, trial_seed(self.study["seed"], t["number"]),
            )
            if run.epochs_done >= run.target:
                store.set_trial_state(conn, run.id, "complete")
            elif run.epochs_done in held:  # a resumed study goes on with the round it was in
                store.set_trial_state(conn, run.id, "running")
                run.state = "running"
                self.waiting.append(run)
            else:
                self.queue.append(run)

    def _next_round(self, conn: sqlite3.Connection) -> None:
        """PBT: the whole population waits at a round boundary; exploit, explore, go on."""
        from engine.search import Space, trial_config

        def configs(params: dict) -> tuple[dict, dict]:
            model, config, _ = trial_config(params, *self.shape)
            return {**model, "hidden": list(model["hidden"])}, config

        runs, self.waiting = sorted(self.waiting, key=lambda r: r.number), []
        space = Space.from_dict(self.study["space"])
        population.next_round(conn, self.study, self.scheduler, space, runs, configs)
        self.queue.extend(runs)

    def _finish(self, conn: sqlite3.Connection) -> str | None:
        """Write the final statuses and release the slot in one transaction (so nobody posts an
        intent to a runner on its way out); None if a resume is waiting: carry on instead."""
        with transaction(conn):
            if self.stopping:
                commands = [i["command"] for i in pending_intents(conn, "study", self.study_id)]
                commands = [c for c in commands if c in ("stop", "resume")]
                if commands and commands[-1] == "resume":
                    return None
                for run in [*self.queue, *self.waiting]:
                    if run.state != "waiting":
                        store.set_trial_state(conn, run.id, "stopped")
                status = "stopped"
            else:
                left = store.get_study(conn, self.study_id)["counts"]
                status = "complete" if sum(left[s] for s in ACTIVE_STATES) == 0 else "stopped"
            store.set_study_status(conn, self.study_id, status)
            release_runner(conn, "study", self.study_id)
        return status

    # -- intents and submission ------------------------------------------------------------
    def _obey_intents(self, conn: sqlite3.Connection) -> None:
        if not conn.execute(
            "SELECT 1 FROM intents WHERE kind = 'study' AND owner_id = ? AND consumed_at IS NULL",
            (self.study_id,),
        ).fetchone():
            return
        for intent in take_intents(conn, "study", self.study_id):
            if intent["command"] == "stop":
                self.stopping = True
                store.set_study_status(conn, self.study_id, "stopping")
            elif intent["command"] == "resume":
                self.stopping = False
                store.set_study_status(conn, self.study_id, "running")
            log.info("study %s: intent %s", self.study_id, intent["command"])

    def _scheduler_for(self, run: _Run):
        if self.scheduler.kind == "full_budget":
            return self.full_budget(run.target, maximize=self.scheduler.maximize)
        return self.scheduler

    def _segment_epochs(self, run: _Run) -> int:
        remaining = self._scheduler_for(run).next_milestone(run.epochs_done) - run.epochs_done
        n = 1
        if run.seconds_per_epoch:
            n = max(1, int(self.segment_seconds / max(run.seconds_per_epoch, 1e-6)))
        if self.max_segment_epochs:
            n = min(n, self.max_segment_epochs)
        return min(n, remaining)

    def _submit(self, conn: sqlite3.Connection, run: _Run) -> None:
        task = {
            "model": run.model,
            "config": run.config,
            "dataset": self.study["dataset"],
            "csv_text": self.csv_text,
            "checkpoint": store.trial_checkpoint(conn, run.id),
            "seed": run.seed,
            "n_epochs": self._segment_epochs(run),
        }
        if run.state != "running":
            store.set_trial_state(conn, run.id, "running")
            run.state = "running"
        try:
            future = self.executor.submit(self.work_fn, task)
        except BrokenProcessPool:  # a worker died since the last look: the pool takes no more
            self._renew_executor()
            future = self.executor.submit(self.work_fn, task)
        self.inflight[future] = (run, self.generation)

    def _renew_executor(self) -> None:
        close_executor(self.executor)
        self.generation += 1
        self.executor = self.executor_factory(self.study)

    # -- results ---------------------------------------------------------------------------
    def _handle(self, conn: sqlite3.Connection, future: Future, run: _Run, generation: int) -> None:
        if future.cancelled():
            self.queue.appendleft(run)
            return
        exc = future.exception()
        if exc is not None and is_worker_death(exc):
            self._worker_died(conn, run, exc, generation)
            return
        try:
            if exc is not None:
                raise exc
            self._record(conn, future.result(), run)
        except Exception as err:
            text = "".join(traceback.format_exception(err))
            log.warning("study %s trial %s failed:\n%s", self.study_id, run.number, text)
            store.set_trial_state(conn, run.id, "failed", error=text)

    def _worker_died(self, conn: sqlite3.Connection, run: _Run, exc: BaseException, gen: int):
        if isinstance(exc, BrokenProcessPool) and gen == self.generation:
            self._renew_executor()  # a broken local pool takes no more work
        run.deaths += 1
        what = describe_worker_death(exc)
        log.warning("study %s trial %s: %s (%d)", self.study_id, run.number, what, run.deaths)
        if run.deaths >= MAX_WORKER_DEATHS:
            store.set_trial_state(
                conn, run.id, "failed", attempts=run.deaths,
                error=f"{what}; gave up after {run.deaths} worker deaths, last checkpoint at "
                f"epoch {run.epochs_done}",
            )
        else:
            store.set_trial_state(conn, run.id, run.state, attempts=run.deaths)
            self.queue.appendleft(run)  # retried from its last checkpoint

    def _record(self, conn: sqlite3.Connection, result: dict, run: _Run) -> None:
        metrics = result["metrics"]
        done = run.epochs_done + len(metrics)
        error = None
        if result["status"] == "diverged":
            state, error = "diverged", result.get("message") or "diverged"
        else:
            state = self._decide(conn, run, done, metrics)
        store.record_segment(
            conn, run.id, metrics, result["checkpoint"], sha256=result.get("sha256"),
            state=state, error=error,
        )
        if metrics:
            per_epoch = sum(m["seconds"] for m in metrics) / len(metrics)
            run.seconds_per_epoch = per_epoch
        run.epochs_done, run.state = done, state
        log.info(
            "study %s trial %s: epoch %d/%d %s%s", self.study_id, run.number, done, run.target,
            state, f" val_acc={metrics[-1]['val_acc']:.4f}" if metrics else "",
        )
        if state in ACTIVE_STATES and self.pbt and population.is_boundary(self.scheduler, done):
            self.waiting.append(run)
        elif state in ACTIVE_STATES:
            self.queue.appendleft(run)

    def _decide(self, conn: sqlite3.Connection, run: _Run, done: int, metrics: list) -> str:
        """The trial's state after ``done`` epochs: complete, pruned, or still going."""
        scheduler = self._scheduler_for(run)
        going = "stopped" if self.stopping else "running"
        if done >= run.target:
            return "complete"
        if self.pbt or not metrics or done != scheduler.next_milestone(run.epochs_done):
            return going  # PBT: the population is judged together, at the round boundary
        key = "val_acc" if scheduler.maximize else "val_loss"
        others = {
            r[0]: r[1]
            for r in conn.execute(
                f"SELECT m.trial_id, m.{key} FROM metrics m JOIN trials t ON t.id = m.trial_id"
                " WHERE t.study_id = ? AND m.epoch = ? AND m.trial_id != ?",
                (self.study_id, done, run.id),
            )
        }
        decision = scheduler.decide(run.id, done, metrics[-1][key], others)
        return {"prune": "pruned", "complete": "complete"}.get(decision, going)


def warm_up(dataset: dict, csv_text: str | None) -> None:
    """A worker's first task: import the engine and build the study's dataset into its cache."""
    from engine.run.work import dataset_for

    dataset_for(dataset, csv_text)


def _freeze_if_exiting() -> None:
    """In a process that is only this runner (``python -m engine``, about to exit), freeze the
    garbage collector: the interpreter then tears down NumPy, SciPy and the rest without the
    collector walking them, ~20 ms instead of ~0.1 s. Other hosts (tests) are left alone."""
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == "engine.__main__":
        gc.freeze()


def _default_executor(study: dict) -> Executor:
    if study["executor_address"]:
        return make_executor("dask", address=study["executor_address"])
    return make_executor("local", workers=study["workers"])


def run_study(db_path: str | os.PathLike, study_id: int, **options) -> str:
    """Run study ``study_id`` to its end in this process and return the final status.

    Options (for tests and benchmarks): ``work_fn`` (default ``engine.run.work.run_segment``),
    ``segment_seconds`` (default 0.5 or $PANDA_CAVIAR_SEGMENT_SECONDS), ``max_segment_epochs``
    (or $PANDA_CAVIAR_MAX_SEGMENT_EPOCHS), ``executor_factory(study) -> Executor``.
    """
    return StudyRunner(db_path, study_id, **options).run()
