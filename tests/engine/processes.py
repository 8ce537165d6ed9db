"""Process-tree helpers for tests that kill runners and check that no worker is left behind."""

from __future__ import annotations

from pathlib import Path


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``: the fork server, the workers forked from it, ..."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def kill_a_busy_dask_worker(client, conn, study_id: int, timeout: float = 60.0) -> str:
    """SIGKILL the process of a Dask worker that is running a task of study ``study_id``, once
    the study has stored an epoch (so the kill lands mid-study); the dead worker's address.
    ``client``: a ``distributed.Client`` of the study's cluster; ``conn``: its database."""
    import os
    import signal
    import time

    from engine.storage import studies as store

    pids = client.run(os.getpid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [address for address, keys in client.processing().items() if keys]
        if busy and store.get_study(conn, study_id)["epochs_done"] > 0:
            os.kill(pids[busy[0]], signal.SIGKILL)
            return busy[0]
        time.sleep(0.05)
    raise AssertionError(f"no worker was busy mid-study within {timeout:g} s")
