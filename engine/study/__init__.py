"""Caviar: studies of many trials, searched by a sampler and scheduled by a scheduler.

The facade the dashboard and the CLI use (pages read and write studies through it and nothing
else). ``facade`` creates, starts, stops, resumes and zooms studies; ``planning`` validates a
study's settings before anything is stored; ``runner`` is the one process that runs a study
(ask -> train -> tell); ``population`` is population-based training's round boundary; ``export``
writes CSV; ``cli`` is ``python -m engine run | resume | stop | list | show | export | sample``.
Reads come straight from ``engine.storage.studies``. See docs/CONTRACTS.md, "engine.study".

The names below load on first use, so importing the runner or ``--help`` stays quick.
"""

from __future__ import annotations

from engine.lazy import lazy_exports

_EXPORTS = {
    "new_study": "facade", "start_study": "facade", "stop_study": "facade",
    "resume_study": "facade", "zoom_plan": "facade", "coarse_to_fine_child": "facade",
    "export_trials_csv": "facade", "export_metrics_csv": "facade",
    "delete_study": "engine.storage.studies",
    "act": "actions", "list_actions": "actions", "wait_applied": "actions",
    "remove_study": "actions", "ACTION_KINDS": "actions",
    "rank_label": "ranking", "columns_scores": "ranking", "check_rank": "ranking",
    "study_scores": "ranking",
    "outside_names": "outside",
    "parameter_importance": "importance", "importance_advice": "importance",
    "MAX_TRIALS": "planning", "MAX_WORKERS": "planning",
    "fork_trial": "roundtrip", "forkable_epochs": "roundtrip", "replay_refusal": "roundtrip",
    "returned_trials": "roundtrip",
    "study_lineage": "roundtrip",
    "plan_trials": "planning", "validate_study": "planning",
    "stacking_plan": "stacking", "stacking_plan_for": "stacking",
    "trial_seed": "runner", "run_study": "runner",
    "STUDY_STATUSES": "engine.storage.studies", "TRIAL_STATES": "engine.storage.studies",
    "TERMINAL_STATES": "engine.storage.studies", "METRIC_COLUMNS": "engine.storage.studies",
    "NotFoundError": "engine.storage.studies",
    "get_study": "engine.storage.studies", "list_studies": "engine.storage.studies",
    "list_trials": "engine.storage.studies", "get_trial": "engine.storage.studies",
    "trial_metrics": "engine.storage.studies", "study_metrics": "engine.storage.studies",
    "trial_checkpoint": "engine.storage.studies", "trial_lineage": "engine.storage.studies",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("engine.study", _EXPORTS)
