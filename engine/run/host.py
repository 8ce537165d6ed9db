"""The runner host: what every runner process does around its own work, written once.

A runner (a study's, ``engine.study.runner``, or a babysitting session's,
``engine.babysit.runner``) is the one writer of its owner's results. Around its loop it must:
claim the owner's slot (``engine.storage.runners``; refused while another live runner holds it),
keep the slot's heartbeat fresh from a thread (so a long segment or a locked database never makes
it look dead), turn SIGTERM/SIGINT into a graceful stop, apply the intents posted for it in
order (each consumed in the transaction that applies it), release the slot when it goes idle
(atomically with a last look for intents, so none is ever stranded), and notice when its slot
was taken over (then it must stop writing).

    with RunnerHost(db_path, "study", study_id) as host:
        if not host.claimed: return
        while not host.lost:
            host.obey_intents(conn, handle)  # each intent applied in its own transaction

Writes that meet a lock held by another process go through ``engine.storage.db.retrying``:
delayed, never lost.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import threading
from collections.abc import Callable
from types import FrameType, TracebackType

from engine.storage import runners
from engine.storage.db import connect, retrying

log = logging.getLogger("engine.run")


class Heartbeat:
    """A daemon thread that keeps a runner's slot fresh, on its own connection.

    Beats every ``interval`` seconds until ``stop()``; ``lost`` is set if the slot was taken
    over (the runner must stop writing). A beat that meets a locked database is skipped, not
    fatal: on this host a live runner is never taken over for a late heartbeat."""

    def __init__(self, db_path, kind: str, owner_id: int, pid: int | None = None,
                 interval: float = runners.HEARTBEAT_SECONDS):
        self.db_path, self.kind, self.owner_id = db_path, kind, owner_id
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-{kind}-{owner_id}", daemon=True
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        conn = connect(self.db_path)
        try:
            while not self._stop.wait(self.interval):
                try:
                    if not runners.heartbeat(conn, self.kind, self.owner_id, self.pid):
                        self.lost.set()
                        return
                except sqlite3.OperationalError:
                    continue  # locked beyond the busy timeout: try again at the next beat
        finally:
            conn.close()


class RunnerHost:
    """Slot, heartbeat, signals, intents and idle release for one runner (a context manager).

    ``claimed`` says whether the slot is ours (False: another live runner holds it; do
    nothing). ``stop_requested`` is set by SIGTERM/SIGINT (only installed when entered from the
    main thread, and ``signals=True``). ``lost`` is True once the slot was taken over. On exit
    the heartbeat stops, the signal handlers are restored, and the slot is released if it is
    still ours (a runner that released it itself, with ``release_if_idle``, is left alone).
    """

    def __init__(self, db_path, kind: str, owner_id: int, *, signals: bool = True,
                 heartbeat_seconds: float = runners.HEARTBEAT_SECONDS):
        self.db_path, self.kind, self.owner_id = db_path, kind, owner_id
        self.signals, self.heartbeat_seconds = signals, heartbeat_seconds
        self.claimed = False
        self.released = False
        self.stop_requested = threading.Event()
        self._conn: sqlite3.Connection | None = None
        self._heart: Heartbeat | None = None
        self._restore: Callable[[], None] = lambda: None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> RunnerHost:
        self._conn = connect(self.db_path)
        self.claimed = retrying(
            lambda: runners.register_runner(self._conn, self.kind, self.owner_id),
            what=f"{self.kind} {self.owner_id}: claim the runner slot",
        )
        if not self.claimed:
            log.warning("%s %s: another live runner holds it", self.kind, self.owner_id)
            return self
        self._heart = Heartbeat(self.db_path, self.kind, self.owner_id,
                                interval=self.heartbeat_seconds).start()
        if self.signals:
            self._restore = self._install_signal_handlers()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._restore()
            if self._heart is not None:
                self._heart.stop()
            if self.claimed and not self.released and not self.lost:
                retrying(lambda: runners.release_runner(self._conn, self.kind, self.owner_id),
                         what=f"{self.kind} {self.owner_id}: release the runner slot")
        finally:
            if self._conn is not None:
                self._conn.close()

    @property
    def lost(self) -> bool:
        """The slot was taken over: stop writing at once."""
        return self._heart is not None and self._heart.lost.is_set()

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def request_stop(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
            log.info("%s %s: signal %s, stopping", self.kind, self.owner_id, signum)
            self.stop_requested.set()

        old = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for signum, handler in old.items():
                signal.signal(signum, handler)

        return restore

    # -- intents and idling ----------------------------------------------------------------
    def obey_intents(
        self,
        conn: sqlite3.Connection,
        handle: Callable[[sqlite3.Connection, dict], None],
        refuse: Callable[[sqlite3.Connection, dict, Exception], None] | None = None,
    ) -> int:
        """Apply the intents posted for this runner, in order, each in one transaction with
        its effects (``runners.obey_intents``; retried past locks); the number applied."""
        def obey() -> int:
            if not runners.has_pending_intents(conn, self.kind, self.owner_id):
                return 0
            return runners.obey_intents(conn, self.kind, self.owner_id, handle, refuse)

        return retrying(obey, what=f"{self.kind} {self.owner_id}: apply intents")

    def release_if_idle(self, conn: sqlite3.Connection,
                        busy: Callable[[sqlite3.Connection], bool] = lambda conn: False) -> bool:
        """Release the slot unless intents are pending or ``busy(conn)`` (one transaction)."""
        released = retrying(
            lambda: runners.release_if_idle(conn, self.kind, self.owner_id, busy),
            what=f"{self.kind} {self.owner_id}: release the runner slot",
        )
        self.released = self.released or released
        return released

    def mark_released(self) -> None:
        """The runner released the slot itself, inside one of its own transactions."""
        self.released = True
