"""Search: spaces, samplers and schedulers as pure logic (no storage, no training).

- ``scales``: the value <-> unit-interval maps and chart axis info (``AxisInfo``).
- ``dimensions``: ``Float``, ``Int``, ``Choice``.
- ``knobs``: the engine knobs a space may search, their domains and defaults.
- ``space``: ``Space(params, fixed)``.
- ``trial``: ``default_space()``, ``trial_config(params, n_features, n_classes)``.
- ``objective``: ``Objective``: the metric a study optimises and its direction, in one place.
- ``history``: ``History`` / ``TrialRecord``: what a sampler and a scheduler see when asked.
- ``samplers``: grid, random, quasi-random, coarse-to-fine, and the samplers that learn (zoom,
  tpe, gp) behind one ``Sampler`` contract.
- ``schedulers``: one contract (continue / pause / prune / complete): ``FullBudget``,
  ``SuccessiveHalving`` (ASHA), ``Hyperband`` (brackets of ASHA), ``PopulationBased`` (PBT).
- ``pbt``: PBT's exploit/explore as pure functions.
- ``compare``: ``best_so_far``, ``distinct_values``.
"""

from engine.search.compare import best_so_far, distinct_values
from engine.search.dimensions import Choice, Dimension, Float, Int, dimension_from_dict
from engine.search.history import History, TrialRecord, ask_rng, history_from_rows
from engine.search.knobs import KNOBS, SEARCHABLE, Knob
from engine.search.objective import METRICS, Objective
from engine.search.samplers import (
    SAMPLERS,
    Box,
    CoarseToFineSampler,
    GPSampler,
    GridSampler,
    QuasiRandomSampler,
    RandomSampler,
    Sampler,
    SequenceSampler,
    TPESampler,
    ZoomSampler,
    sampler_from_dict,
)
from engine.search.scales import SCALES, AxisInfo, SpaceError
from engine.search.schedulers import (
    ASHA,
    COMPLETE,
    CONTINUE,
    DECISIONS,
    PAUSE,
    PRUNE,
    SCHEDULERS,
    FullBudget,
    Hyperband,
    PopulationBased,
    Scheduler,
    SchedulerError,
    SuccessiveHalving,
    scheduler_from_dict,
)
from engine.search.space import Space
from engine.search.trial import default_space, trial_config

__all__ = [
    "ASHA",
    "COMPLETE",
    "CONTINUE",
    "PAUSE",
    "PRUNE",
    "DECISIONS",
    "KNOBS",
    "METRICS",
    "SAMPLERS",
    "SCALES",
    "SCHEDULERS",
    "SEARCHABLE",
    "AxisInfo",
    "Box",
    "Choice",
    "CoarseToFineSampler",
    "Dimension",
    "Float",
    "FullBudget",
    "GPSampler",
    "GridSampler",
    "History",
    "Hyperband",
    "Int",
    "PopulationBased",
    "Knob",
    "Objective",
    "QuasiRandomSampler",
    "RandomSampler",
    "Sampler",
    "Scheduler",
    "SequenceSampler",
    "SchedulerError",
    "Space",
    "SpaceError",
    "SuccessiveHalving",
    "TPESampler",
    "TrialRecord",
    "ZoomSampler",
    "ask_rng",
    "best_so_far",
    "default_space",
    "dimension_from_dict",
    "distinct_values",
    "history_from_rows",
    "sampler_from_dict",
    "scheduler_from_dict",
    "trial_config",
]
