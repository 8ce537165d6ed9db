"""Search: spaces, samplers and schedulers as pure logic (no storage, no training).

- ``scales``: the value <-> unit-interval maps and chart axis info (``AxisInfo``).
- ``dimensions``: ``Float``, ``Int``, ``Choice``.
- ``knobs``: the engine knobs a space may search, their domains and defaults.
- ``space``: ``Space(params, fixed)``.
- ``trial``: ``default_space()``, ``trial_config(params, n_features, n_classes)``.
- ``samplers``: grid, random, quasi-random, coarse-to-fine behind one ``Sampler`` base.
- ``schedulers``: ``FullBudget``, ``SuccessiveHalving`` (ASHA), ``PopulationBased`` (PBT).
- ``pbt``: PBT's exploit/explore as pure functions.
- ``compare``: ``best_so_far``, ``distinct_values``.
"""

from engine.search.compare import best_so_far, distinct_values
from engine.search.dimensions import Choice, Dimension, Float, Int, dimension_from_dict
from engine.search.knobs import KNOBS, SEARCHABLE, Knob
from engine.search.samplers import (
    SAMPLERS,
    Box,
    CoarseToFineSampler,
    GridSampler,
    QuasiRandomSampler,
    RandomSampler,
    Sampler,
    sampler_from_dict,
)
from engine.search.scales import SCALES, AxisInfo, SpaceError
from engine.search.schedulers import (
    ASHA,
    DECISIONS,
    SCHEDULERS,
    FullBudget,
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
    "DECISIONS",
    "KNOBS",
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
    "GridSampler",
    "Int",
    "PopulationBased",
    "Knob",
    "QuasiRandomSampler",
    "RandomSampler",
    "Sampler",
    "Scheduler",
    "SchedulerError",
    "Space",
    "SpaceError",
    "SuccessiveHalving",
    "best_so_far",
    "default_space",
    "dimension_from_dict",
    "distinct_values",
    "sampler_from_dict",
    "scheduler_from_dict",
    "trial_config",
]
