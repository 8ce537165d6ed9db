"""Checking a Dask cluster before the first trial: can it run this engine?

A scheduler or worker started where ``engine`` is not importable fails every task ("Error during
deserialization of the task graph" over "No module named 'engine'": the scheduler unpickles the
graph too), and one with other NumPy or engine versions may train other numbers. ``check_cluster``
asks the scheduler to run one tiny engine task and every worker to report its versions, and
raises ``ClusterNotReady`` with one message naming the fix instead.
"""

from __future__ import annotations

from concurrent.futures import Executor

FIX = ("install the engine on the scheduler's and every worker's machine with `pip install .` "
       "from this repository (the same version as here), then restart `dask scheduler` and "
       "`dask worker`")


class ClusterNotReady(ConnectionError):
    """The Dask cluster cannot run this engine (the message says why and how to fix it)."""


def versions() -> dict[str, str]:
    """This process's engine and NumPy versions (run on a worker by ``check_cluster``)."""
    import numpy

    import engine

    return {"engine": engine.__version__, "numpy": numpy.__version__}


def check_cluster(executor: Executor, address: str, *, timeout: float = 60.0) -> dict:
    """The workers' versions (``{worker address: versions}``), or ``ClusterNotReady``."""
    client = getattr(executor, "_panda_client", None)
    if client is None:
        return {}
    here = versions()

    def refuse(reason: str) -> ClusterNotReady:
        return ClusterNotReady(
            f"the Dask cluster at {address} cannot run this engine: {reason}. Fix: {FIX}."
        )

    if not client.scheduler_info().get("workers"):
        try:
            client.wait_for_workers(1, timeout=timeout)
        except Exception:  # noqa: BLE001 - distributed raises TimeoutError or its own
            raise refuse(f"no worker joined the scheduler within {timeout:g} s") from None
    try:  # through the scheduler, which unpickles the task as the trials' tasks will be
        executor.submit(versions).result(timeout=timeout)
        reports = client.run(versions)
    except Exception as exc:  # noqa: BLE001 - whatever the cluster raised, said in one line
        text = str(exc).replace("\n", " ")
        if "No module named" in text or "deserializ" in text.lower():
            reason = f"the scheduler or a worker cannot import the engine ({text[:200]})"
        else:
            reason = f"a test task failed: {type(exc).__name__}: {text[:200]}"
        raise refuse(reason) from None
    for worker, theirs in sorted(reports.items()):
        if theirs != here:
            raise refuse(
                f"worker {worker} has engine {theirs.get('engine')} / numpy "
                f"{theirs.get('numpy')}, this runner engine {here['engine']} / numpy "
                f"{here['numpy']}"
            )
    return reports
