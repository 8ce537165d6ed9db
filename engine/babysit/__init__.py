"""Panda: babysit one model, epoch by epoch, steered by a person (or the automatic babysitter).

The facade the dashboard and the CLI use. A session lives in SQLite (``engine.storage.sessions``);
commands are validated and applied by ``engine.babysit.commands``; a detached runner
(``engine.babysit.runner``, ``python -m engine babysit serve ID``) executes the queued ones and is
the one writer of results; ``engine.babysit.views`` reads. See docs/CONTRACTS.md, "engine.babysit".

The names below load on first use, so ``python -m engine babysit --help`` (which imports
``engine.babysit.cli``) stays quick.
"""

from __future__ import annotations

from engine.lazy import lazy_exports

_EXPORTS = {
    "COMMANDS": "checks", "execute": "commands", "load_state_at": "live",
    "validate": "checks",
    "adopt_trial": "create", "new_session": "create", "trial_replays": "create",
    "ensure_runner": "runner", "send": "runner", "serve": "runner",
    "CheckpointPruned": "engine.storage.sessions", "SessionNotFound": "engine.storage.sessions",
    "list_sessions": "views", "load_head_state": "views", "session_curves": "views",
    "session_dataset": "views", "session_events": "views", "session_view": "views",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("engine.babysit", _EXPORTS)
