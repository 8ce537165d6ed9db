"""How many members a stacked unit may hold: a memory bound and a cache budget.

``stack_bytes`` / ``max_members``: an upper estimate of what ``train_stacked`` allocates and
the most members under ``MEMORY_BOUND`` (256 MiB a unit). ``step_bytes`` / ``cache_members``:
the bytes one member's step works through (its activations and gradients for a mini-batch,
its parameters, gradients and optimizer slots) and the largest power-of-two stack whose steps
fit ``CACHE_BUDGET``, at least ``CACHE_FLOOR`` members. A stacked step makes some 35
elementwise passes over (P, B, H) buffers; once a stack's working set outgrows the cache they
stream from memory: on this machine (32 MiB L3, shared) 64 members of 64-64-10 with BN and
Adam, batch 64 (about 16 MiB a step) trained 1.55x the trials/s of one at a time, two stacks
of 32 (8 MiB) 1.76-1.81x and four of 16 1.73-1.86x, while 2-16-16-2 on moons, batch 32 (64
members: 2.7 MiB), gained from every doubling up to 64 (2.9x at 8, 5.5-5.6x at 64;
``benchmarks/stacked.py --sizes``).
"""

from __future__ import annotations

import numpy as np

from engine.nn.model import ModelSpec, param_shapes
from engine.nn.optim import SLOTS
from engine.nn.stacked_arena import stack_spec
from engine.nn.stacked_optim import FULL_WIDTH

EVAL_ELEMENTS = 1 << 19  # a validation chunk holds at most this many activations (P rows H):
# chunks of 2 MiB (float32) evaluated 1.3x faster than of 8 MiB on digits, 64 x 64-64-10 and
# widths 8..256 (smaller chunks lose again to the calls a chunk costs)
EVAL_ROWS = 64  # and at most this many rows: 200 x 64 x 16 (case (a)) in 4 chunks 1.2x faster
MEMORY_BOUND = 256 * 2**20  # bytes a stacked work unit may take (``max_members``)
CACHE_BUDGET = 8 * 2**20  # bytes a stack's step may work through (``cache_members``): a quarter
# of the L3 this machine reports (32 MiB, shared with its neighbours), where case (b) peaked
CACHE_FLOOR = 8  # the fewest members ``cache_members`` gives


def _params(spec: ModelSpec) -> int:
    """Parameters a member holds (entries)."""
    return sum(int(np.prod(s)) for s in param_shapes(spec).values())


def _per_row(spec: ModelSpec) -> int:
    """Entries a step workspace holds per mini-batch row (activations and gradients)."""
    return sum(9 * h for h in spec.hidden) + 4 * spec.n_outputs + spec.n_inputs


def stack_bytes(specs: list[ModelSpec], optimizer: str, batch_size: int, n_train: int,
                n_val: int) -> int:
    """An upper estimate of what ``train_stacked`` allocates for these members (bytes)."""
    spec = stack_spec(specs)
    p, item = len(specs), np.dtype(spec.dtype).itemsize
    size, per_row = _params(spec), _per_row(spec)
    knobs = 6 if size < FULL_WIDTH else 0  # Hyper.widen
    arena = p * size * item * (3 + len(SLOTS[optimizer]) + 2 + knobs + 2)  # w g scratch slots
    # snapshot, L2 matrix, knobs and the two training workspaces' transposed weights
    widths = (*spec.hidden, spec.n_outputs)
    b = min(batch_size, n_train)
    steps = 2 * p * b * per_row * item  # the full batch's workspace and the last one's
    rows = max(1, min(n_val, EVAL_ROWS, EVAL_ELEMENTS // (p * max(widths))))
    evals = 2 * p * rows * per_row * item
    epoch = p * n_train * (spec.n_outputs * item + 8 + 8 + 1)  # targets, perm, labels, marks
    return arena + steps + evals + epoch + p * n_val * 9


def max_members(spec: ModelSpec, optimizer: str, batch_size: int, n_train: int, n_val: int,
                bound: int = MEMORY_BOUND) -> int:
    """The most members of ``spec`` one stacked unit may hold under ``bound`` bytes."""
    one = stack_bytes([spec], optimizer, batch_size, n_train, n_val)
    return max(1, bound // max(one, 1))


def step_bytes(spec: ModelSpec, optimizer: str, batch_size: int) -> int:
    """The bytes one member's training step works through: the step workspace's activations
    and gradients for ``batch_size`` rows (as ``stack_bytes`` counts them) plus its parameters,
    their gradients and the optimizer's slots."""
    item = np.dtype(spec.dtype).itemsize
    return item * (batch_size * _per_row(spec) + _params(spec) * (2 + len(SLOTS[optimizer])))


def cache_members(spec: ModelSpec, optimizer: str, batch_size: int,
                  budget: int = CACHE_BUDGET) -> int:
    """The largest power of two of members of ``spec`` whose steps fit ``budget`` bytes, at
    least ``CACHE_FLOOR`` (small members stay overhead-bound: there a larger stack pays)."""
    fit = budget // max(1, step_bytes(spec, optimizer, batch_size))
    return max(CACHE_FLOOR, 1 << (max(1, fit).bit_length() - 1))
