"""Process machinery both runners share: where a runner runs and how it stays the one writer.

- ``host``: the runner host (claim the slot, heartbeat, signals, intents, idle exit).
- ``launch``: start a detached runner (``python -m engine ...``) that outlives the dashboard.
- ``execution``: the executors trials run on (local process pool | Dask distributed).
- ``work``: the work unit a worker runs (one training segment), data in, data out.
- ``worker_preload``: what a local worker imports before its first task.
"""
