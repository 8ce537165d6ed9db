"""The study runner: ask -> train -> tell, in the one process that writes a study's results.

``run_study(db_path, study_id)`` is the body of ``python -m engine run --study ID``, normally
started detached by ``engine.run.launch``. Inside an ``engine.run.host.RunnerHost`` (the slot,
the heartbeat, SIGTERM/SIGINT as a graceful stop) it keeps the study's
:class:`~engine.search.History` in step with what it commits, and loops:

1. take intents: ``stop`` (submit nothing more; trials in flight finish their segment, are
   checkpointed and marked ``stopped``), ``resume`` (cancel a stop in progress) and ``action``
   (apply the actions people queued on the study: ``engine.study.steer``);
2. fill the free worker slots: a started trial goes on with its next segment first
   (depth-first); only when none can, the sampler is **asked** for a new trial with the whole
   history (``sampler.ask(space, history, ask_rng(seed, number))``) and the trial's row is
   written at once, before it trains. No trial is asked once the budget is reached: ``n_trials``
   trials, or ``epoch_budget`` epochs trained plus reserved by trials in progress (up to their
   next milestone), or the sampler has nothing left;
3. hand each finished unit to ``engine.study.tell``: the segment recorded in one transaction,
   the scheduler's decision at a milestone, a finished trial **told** to the sampler;
4. when every live trial is paused and nothing else can run, ``scheduler.on_pause`` (a
   population-based round boundary: ``engine.study.population``), then they all go on.

A trial ends ``complete``, ``pruned``, ``diverged``, ``failed`` or, after a stop, ``stopped``.
A write that meets a lock held by another process waits (``retrying``) with the result in memory.

Crash safety: a trial's row is committed before it trains, and a segment's metrics with its
checkpoint, so a runner killed at any moment and restarted asks no trial twice, loses none, and
loses, repeats or skips no epoch. The restarted runner rebuilds the history from the database,
which is what the killed one held, so a sampler asked again answers the same point.
"""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import replace

from engine.run.host import RunnerHost
from engine.storage import studies as store
from engine.storage.actions import has_pending_actions
from engine.storage.blobs import get_upload
from engine.storage.db import connect, retrying, transaction
from engine.storage.runners import pending_intents, release_runner
from engine.study import steer, tell
from engine.study.slots import Slots, default_executor
from engine.study.tell import MAX_WORKER_DEATHS
from engine.study.trials import TrialRun as _Run
from engine.study.trials import budget_left, segment_epochs, trial_seed

__all__ = ["MAX_WORKER_DEATHS", "SEGMENT_SECONDS", "StudyRunner", "run_study", "trial_seed"]

log = logging.getLogger("engine.runner")

SEGMENT_SECONDS = 0.5  # curves grow visibly; a segment costs ~3 ms of overhead (<1%)
POLL_SECONDS = 0.1


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
        stack: bool | None = None,
        stack_fn: Callable[[dict], dict] | None = None,
    ):
        from engine.run.work import run_segment

        self.warm_up = work_fn is None
        work_fn = work_fn or run_segment
        self.db_path, self.study_id, self.work_fn = db_path, study_id, work_fn
        self.segment_seconds = (
            segment_seconds or _env_float("PANDA_CAVIAR_SEGMENT_SECONDS") or SEGMENT_SECONDS
        )
        cap = max_segment_epochs or _env_float("PANDA_CAVIAR_MAX_SEGMENT_EPOCHS")
        self.max_segment_epochs = int(cap) if cap else None
        self.executor_factory = executor_factory or default_executor
        # stacked work units (engine.study.stacking), for the trials where stacking pays: on
        # unless stack=False or $PANDA_CAVIAR_STACK=0; by default only with the real work unit
        # or a stack_fn of its own (a stand-in work_fn has no stacked counterpart)
        from engine.study.stacking import enabled

        if stack is None and work_fn is not run_segment and stack_fn is None:
            stack = False
        self.stack = enabled(stack)
        if stack_fn is None:
            from engine.run.stacked_work import run_stacked_segment as stack_fn
        self.stack_fn = stack_fn
        self.stopping = False
        self.exhausted = False  # the sampler has nothing more to propose
        self.queue: deque[_Run] = deque()  # started trials ready for their next segment
        self.paused: list[_Run] = []  # at a round boundary, until the population is there
        self.slots: Slots | None = None
        self.host: RunnerHost | None = None
        self.cancelled: set[int] = set()  # trials stopped by hand while their segment trains
        self.intent_handlers = {"stop": self._on_stop, "resume": self._on_resume}

    # -- lifecycle -------------------------------------------------------------------------
    def run(self) -> str:
        """Run to the end (complete / stopped / failed) and return the final stored status.

        A study id that is not in the database raises NotFoundError before any runner slot is
        claimed (no runner row is left for a study that does not exist)."""
        probe = connect(self.db_path)
        try:
            store.get_study(probe, self.study_id)
        finally:
            probe.close()
        with RunnerHost(self.db_path, "study", self.study_id) as host:
            conn = connect(self.db_path)
            try:
                if not host.claimed:
                    return store.get_study(conn, self.study_id)["status"]
                self.host = host
                status = self._run_guarded(conn)
            finally:
                if self.slots is not None:
                    self.slots.close()
                conn.close()
        log.info("study %s: %s", self.study_id, status)
        _freeze_if_exiting()
        return status

    def _run_guarded(self, conn: sqlite3.Connection) -> str:
        try:
            return self._run(conn)
        except ConnectionError as exc:  # the cluster is unreachable or cannot run the engine
            log.error("study %s: cannot run its trials: %s", self.study_id, exc)  # no traceback:
            message = str(exc)  # the message says what is wrong and how to fix it
        except Exception as exc:
            log.exception("study %s: runner crashed", self.study_id)
            message = f"runner crashed: {type(exc).__name__}: {exc}"
        if not self.host.lost:
            retrying(lambda: store.set_study_status(conn, self.study_id, "failed", message))
        return "failed"

    def _run(self, conn: sqlite3.Connection) -> str:
        self._start(conn)
        while True:
            if self.host.lost:
                log.error("study %s: runner slot taken over; abandoning", self.study_id)
                return "lost"
            if self.host.stop_requested.is_set():
                self.stopping = True
            self._obey_intents(conn)
            self._fill_slots(conn)
            if not self.slots:
                if self._end_of_round(conn):
                    continue
                status = self._finish(conn)
                if status is not None:
                    return status
                continue  # a resume arrived while stopping
            for future, run, generation in self.slots.wait(POLL_SECONDS):
                tell.handle(self, conn, future, run, generation)

    def _start(self, conn: sqlite3.Connection) -> None:
        study = store.get_study(conn, self.study_id)
        retrying(lambda: store.set_study_status(conn, self.study_id, "running", ""))
        self.study = study
        # Local workers' fork server starts importing NumPy, SciPy and the engine now, on the
        # other core, while this process imports what it needs (the first ~0.5 s of a study).
        self.slots = Slots(study, self.executor_factory).open()
        from engine.data import build_dataset
        from engine.search import (
            Objective,
            Space,
            history_from_rows,
            sampler_from_dict,
            scheduler_from_dict,
        )

        spec = study["dataset"]
        self.csv_text = get_upload(conn, spec["csv_sha256"]) if spec["kind"] == "csv" else None
        if self.warm_up:  # workers start and build the data while this process does the same
            self.slots.warm_up(spec, self.csv_text)
        data = build_dataset(spec, self.csv_text)
        self.shape = (data.X_train.shape[1], data.n_classes)
        self.space = Space.from_dict(study["space"])
        self.sampler = sampler_from_dict(study["sampler"])
        self.scheduler = scheduler_from_dict(study["scheduler"])
        self.objective = Objective.from_dict(study["objective"])
        trials, metrics = store.study_trials_and_metrics(conn, self.study_id)
        self.history = history_from_rows(trials, metrics, self.objective, seed=study["seed"],
                                         n_trials=study["n_trials"])
        self._load_runs(conn, trials)
        steer.apply_actions(self, conn)  # queued for a runner that died before applying them
        log.info("study %s: %d trials asked, %d to go on, %d workers%s", self.study_id,
                 self.history.number, len(self.queue) + len(self.paused), study["workers"],
                 f" on {study['executor_address']}" * bool(study["executor_address"]))

    def _configs(self, params: dict) -> tuple[dict, dict, int]:
        from engine.search import trial_config

        model, config, n_epochs = trial_config(params, *self.shape)
        return {**model, "hidden": list(model["hidden"])}, config, n_epochs

    def _new_run(self, trial: dict) -> _Run:
        model, config, _ = self._configs(trial["params"])
        return _Run(trial["id"], trial["number"], trial["state"], trial["epochs_done"],
                    trial["target_epochs"], trial["attempts"], model, config,
                    trial_seed(self.study["seed"], trial["number"]))

    def _load_runs(self, conn: sqlite3.Connection, trials: list[dict]) -> None:
        for t in trials:
            if t["state"] not in store.PENDING_STATES:
                continue
            run = self._new_run(t)
            if run.epochs_done >= run.target:
                self._set_state(conn, run, "complete")
                tell.told(self, conn, run)
            elif run.state == "paused":
                self.paused.append(run)
            else:
                self.queue.append(run)

    def _finish(self, conn: sqlite3.Connection) -> str | None:
        """Write the final statuses and release the slot in one transaction (so nobody posts an
        intent to a runner on its way out); None if a resume is waiting: carry on instead."""
        def finish() -> str | None:
            with transaction(conn):
                if has_pending_actions(conn, self.study_id):
                    return None  # applied below, then the loop goes on
                if self.stopping:
                    commands = [i["command"] for i in pending_intents(conn, "study", self.study_id)
                                if i["command"] in ("stop", "resume")]
                    if commands and commands[-1] == "resume":
                        return None
                    for run in self.queue:
                        if run.state == "running":
                            store.set_trial_state(conn, run.id, "stopped")
                            run.state = "stopped"
                    status = "stopped"
                else:
                    status = "stopped" if self.history.pending() else "complete"
                store.set_study_status(conn, self.study_id, status)
                release_runner(conn, "study", self.study_id)
            return status

        status = retrying(finish, what=f"study {self.study_id}: finish")
        if status is None:
            steer.apply_actions(self, conn)
        if status is not None and self.host is not None:
            self.host.mark_released()
        return status

    # -- intents ---------------------------------------------------------------------------
    def _obey_intents(self, conn: sqlite3.Connection) -> None:
        """Apply the posted intents in order, each consumed in the transaction that applies it
        (a kill never loses a stop). ``action`` only wakes the runner: the actions are rows of
        their own, applied once the intents are taken."""
        woken = []

        def handle(conn: sqlite3.Connection, intent: dict) -> None:
            log.info("study %s: intent %s", self.study_id, intent["command"])
            if intent["command"] == "action":
                woken.append(intent)
            elif (handler := self.intent_handlers.get(intent["command"])) is not None:
                handler(conn, intent["payload"])
            else:
                log.warning("study %s: unknown intent %r ignored", self.study_id, intent)

        self.host.obey_intents(conn, handle)
        if woken:
            steer.apply_actions(self, conn)

    def _on_stop(self, conn: sqlite3.Connection, payload: dict) -> None:
        self.stopping = True
        store.set_study_status(conn, self.study_id, "stopping")

    def _on_resume(self, conn: sqlite3.Connection, payload: dict) -> None:
        self.stopping = False
        store.set_study_status(conn, self.study_id, "running")

    # -- asking and submitting -------------------------------------------------------------
    def _fill_slots(self, conn: sqlite3.Connection) -> None:
        while not self.stopping and self.slots.free:
            run = self.queue.popleft() if self.queue else self._ask(conn)
            if run is None:
                return
            if self.stack:
                from engine.study import stacking

                stacking.submit(self, conn, run)
            else:
                self._submit(conn, run)

    def may_ask(self) -> bool:
        """Whether the budget lets the study ask another trial."""
        if self.exhausted or self.stopping:
            return False
        return budget_left(self.history, self.scheduler, self.study["n_trials"],
                           self.study["epoch_budget"])

    def _ask(self, conn: sqlite3.Connection) -> _Run | None:
        from engine.search import TrialRecord, ask_rng

        if not self.may_ask():
            return None
        number = self.history.number
        u = self.sampler.ask(self.space, self.history, ask_rng(self.study["seed"], number))
        if u is None:
            self.exhausted = True
            log.info("study %s: the %s sampler has nothing more to try", self.study_id,
                     self.sampler.kind)
            return None
        params = self.space.params_from_unit(u)
        _, _, n_epochs = self._configs(params)
        row = {"params": params, "unit": u.tolist(),
               "target_epochs": self.scheduler.target_epochs(n_epochs)}
        trial_id = retrying(lambda: store.add_trials(conn, self.study_id, [row])[0],
                            what=f"study {self.study_id}: record trial {number}")
        trial = store.get_trial(conn, trial_id)
        if trial["number"] != number:
            raise RuntimeError(f"trial {trial_id} got number {trial['number']}, not {number}: "
                               "another process wrote trials of this study")
        self.history = self.history.with_trial(TrialRecord(
            number, tuple(row["unit"]), params, "waiting", {}, row["target_epochs"]))
        log.info("study %s: asked trial %d %s", self.study_id, number, params)
        return self._new_run(trial)

    def _segment_epochs(self, run: _Run) -> int:
        return segment_epochs(run, self.scheduler, self.segment_seconds, self.max_segment_epochs)

    def _submit(self, conn: sqlite3.Connection, run: _Run) -> None:
        task = self._task(conn, run)
        if run.state != "running":
            self._set_state(conn, run, "running")
        self.slots.submit(self.work_fn, task, run)

    def _task(self, conn: sqlite3.Connection, run: _Run) -> dict:
        n_epochs = self._segment_epochs(run)
        milestone = self.scheduler.next_milestone(run.number, run.epochs_done, run.target)
        return {
            "model": run.model,
            "config": run.config,
            "dataset": self.study["dataset"],
            "csv_text": self.csv_text,
            "checkpoint": store.trial_checkpoint(conn, run.id),
            "seed": run.seed,
            "n_epochs": n_epochs,
            # health at the trial's budget and at rungs: its last health is its final epoch's
            "health_last": run.epochs_done + n_epochs >= milestone,
        }

    def _set_state(self, conn: sqlite3.Connection, run: _Run, state: str, **fields) -> None:
        retrying(lambda: store.set_trial_state(conn, run.id, state, **fields),
                 what=f"study {self.study_id} trial {run.number}: state {state}")
        run.state = state
        self.history = self.history.with_trial(
            replace(self.history.by_number(run.number), state=state))

    # -- the round boundary ------------------------------------------------------------
    def _end_of_round(self, conn: sqlite3.Connection) -> bool:
        """Every live trial is paused and nothing else can run: let the scheduler apply the
        round (``engine.study.population``) and let them all go on. Whether it did."""
        if not self.paused or self.stopping or self.queue or self.slots or self.may_ask():
            return False
        from engine.study import population

        runs, self.paused = sorted(self.paused, key=lambda r: r.number), []
        self.history = population.next_round(
            conn, self.study, self.scheduler, self.space, runs, self.history,
            lambda params: self._configs(params)[:2],
        )
        self.queue.extend(runs)
        return True


def _freeze_if_exiting() -> None:
    """In a process that is only this runner (``python -m engine``, about to exit), freeze the
    garbage collector: the interpreter then tears down NumPy, SciPy and the rest without the
    collector walking them, ~20 ms instead of ~0.1 s. Other hosts (tests) are left alone."""
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == "engine.__main__":
        gc.freeze()


def run_study(db_path: str | os.PathLike, study_id: int, **options) -> str:
    """Run study ``study_id`` to its end in this process and return the final status.

    Options (for tests and benchmarks): ``work_fn`` (default ``engine.run.work.run_segment``),
    ``segment_seconds`` (default 0.5 or $PANDA_CAVIAR_SEGMENT_SECONDS), ``max_segment_epochs``
    (or $PANDA_CAVIAR_MAX_SEGMENT_EPOCHS), ``executor_factory(study) -> Executor``, ``stack``
    (stacked work units, ``engine.study.stacking``; default on unless $PANDA_CAVIAR_STACK is 0),
    ``stack_fn`` (default ``engine.run.stacked_work.run_stacked_segment``).
    """
    return StudyRunner(db_path, study_id, **options).run()
