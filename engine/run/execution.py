"""Executors that run work units: local worker processes or a Dask distributed cluster.

Both are plain ``concurrent.futures.Executor`` objects, so the runner does not care which one
it drives. Parallelism is across trials, one BLAS thread per worker: measured here, two
single-thread trials side by side ran ~2x one, while one trial on two BLAS threads gained at
most 1.3-1.5x and collapsed when the other core was busy.

Local workers are forked from a *fork server* (``forkserver`` start method) that has already
imported NumPy, SciPy's BLAS and the engine (``engine.run.worker_preload``, which also sets one
BLAS thread there before any BLAS loads): the server starts importing the moment the
executor is made, while the runner goes on with its own set-up, and every worker forks from it
ready to train (a spawned worker re-imported all of it: ~0.3 s each, on the critical path of
every study). A fork server has no threads or locks of the runner, as ``spawn`` had none. Each
worker's initializer limits BLAS to one thread with threadpoolctl (which reaches the libraries
the server loaded), sets the ``*_NUM_THREADS`` variables for anything the worker starts, and
takes the environment of the process that made the executor (``sys.path`` and the working
directory come with every new process, as with ``spawn``; the environment would be the fork
server's, as of its start: it outlives executors). A watchdog thread in each worker exits when
the runner that owns it is gone (a runner killed with SIGKILL leaves no orphan workers behind).
Where ``forkserver`` is unavailable, workers are spawned.

A worker process that dies takes the local pool down with it (``BrokenProcessPool`` for every
future in flight) and, on Dask, surfaces as ``KilledWorker`` once the scheduler gives up on a
task. ``is_worker_death`` recognises both, so the runner can retry from the last checkpoint.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from engine.storage.runners import pid_alive

BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
EXECUTOR_KINDS = ("local", "dask")
# What the fork server imports once for every local worker: NumPy, SciPy's BLAS, the engine.
WORKER_PRELOAD = ("engine.run.worker_preload",)

ORPHAN_CHECK_SECONDS = 1.0  # poll interval where the owner cannot be waited on with a pidfd
_limiter = None  # kept alive in each worker: threadpoolctl limits last as long as the object


class WorkerDiedError(RuntimeError):
    """The process running a work unit died (killed, out of memory, crashed)."""


def limit_blas_threads() -> None:
    """One BLAS/OpenMP thread in this process."""
    global _limiter
    for name in BLAS_VARIABLES:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    _limiter = threadpool_limits(limits=1)


def _exit_with_owner(owner: int) -> None:
    """Return never: wait until process ``owner`` ends, then end this process at once."""
    try:
        fd = os.pidfd_open(owner)
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):  # no pidfd here (old kernel, not Linux): poll instead
        while pid_alive(owner):
            time.sleep(ORPHAN_CHECK_SECONDS)
        os._exit(0)
    select.select([fd], [], [])  # a pidfd turns readable when its process has ended
    os._exit(0)


def init_local_worker(owner: int, environ: dict[str, str] | None = None) -> None:
    """Local worker initializer: the owner's environment, one BLAS thread, and an exit when the
    runner (``owner``, the process that made the executor) dies.

    A runner killed with SIGKILL cannot shut its pool down, and its workers would wait forever
    on a queue whose write end they hold themselves; a watchdog thread ends them instead. It
    waits on the owner itself, not on the parent: a worker's parent is the fork server."""
    import threading

    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    limit_blas_threads()
    threading.Thread(target=_exit_with_owner, args=(owner,), daemon=True).start()


def worker_context() -> multiprocessing.context.BaseContext:
    """The start method of local workers: a fork server that preloads ``WORKER_PRELOAD``
    (started now, so it imports while the caller goes on), else ``spawn``."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WORKER_PRELOAD))  # no effect once a server runs
    forkserver.ensure_running()
    return context


def blas_threads() -> list[int]:
    """The thread count of every BLAS/OpenMP pool loaded in this process (for checks)."""
    import numpy  # noqa: F401  (make sure NumPy's BLAS is loaded before asking)
    from threadpoolctl import threadpool_info

    return [int(pool["num_threads"]) for pool in threadpool_info()]


def default_workers() -> int:
    """One worker per CPU."""
    return os.cpu_count() or 1


def make_executor(
    kind: str, *, workers: int | None = None, address: str = "", timeout: float = 10.0,
    check: bool = True,
) -> Executor:
    """A ``local`` process pool of ``workers`` (default: one per CPU) or a ``dask`` executor on
    the scheduler at ``address`` (e.g. ``tcp://127.0.0.1:8786``; ``timeout`` s to connect),
    checked with ``engine.run.cluster.check_cluster`` unless ``check`` is false."""
    if kind == "local":
        workers = default_workers() if workers is None else workers
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got workers={workers!r}")
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=worker_context(),
            initializer=init_local_worker,
            initargs=(os.getpid(), dict(os.environ)),
        )
    if kind == "dask":
        if not address:
            raise ValueError(
                "a dask executor needs the scheduler address, e.g. address='tcp://host:8786';"
                " got address=''"
            )
        from distributed import Client

        try:
            client = Client(address, timeout=f"{timeout}s", set_as_default=False)
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {address!r}: {exc}"
            ) from exc
        executor = client.get_executor(pure=False)
        executor._panda_client = client  # so close_executor can close the connection
        if check:
            from engine.run.cluster import check_cluster

            try:
                check_cluster(executor, address)
            except BaseException:
                close_executor(executor)
                raise
        return executor
    raise ValueError(f"executor kind must be one of {EXECUTOR_KINDS}, got kind={kind!r}")


def close_executor(executor: Executor, *, cancel: bool = True) -> None:
    """Shut the executor down without waiting for running work (pending work cancelled)."""
    try:
        executor.shutdown(wait=False, cancel_futures=cancel)
    except TypeError:  # executors without cancel_futures
        executor.shutdown(wait=False)
    client = getattr(executor, "_panda_client", None)
    if client is not None:
        client.close()


def dask_worker_scheduler_info(executor: Executor) -> dict:
    """The Dask client's scheduler info (workers and their addresses); {} for a local pool."""
    client = getattr(executor, "_panda_client", None)
    return client.scheduler_info() if client is not None else {}


def is_worker_death(exc: BaseException) -> bool:
    """Whether ``exc`` means the worker process died rather than the work unit failing."""
    if isinstance(exc, (BrokenProcessPool, WorkerDiedError)):
        return True
    name = type(exc).__name__
    if name in ("KilledWorker", "CommClosedError", "FutureCancelledError"):
        return True
    return isinstance(exc, ConnectionError) and "scheduler" in str(exc).lower()


def describe_worker_death(exc: BaseException) -> str:
    """A readable one-line account of a worker death."""
    if isinstance(exc, BrokenProcessPool):
        return "worker died: a local worker process was terminated abruptly"
    if type(exc).__name__ == "KilledWorker":
        return f"worker died: Dask gave up on the task after its workers died ({exc})"
    return f"worker died: {type(exc).__name__}: {exc}"
