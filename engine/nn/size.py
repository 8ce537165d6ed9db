"""How big a model is, checked before anything is allocated or trained.

The knob limits alone allow models that cannot be kept: 7 hidden layers of 4,096 units train one
epoch and then fail with SQLite's "string or blob too big" after ~7 GB of RAM. ``check_size``
refuses such a model up front, from its ``ModelSpec`` and batch size only, with a message giving
the limit and the size asked for.
"""

from __future__ import annotations

import numpy as np

from engine.nn.model import ModelSpec, buffer_shapes, param_shapes

MAX_PARAMS = 5_000_000
MAX_CHECKPOINT_BYTES = 128 * 2**20  # one checkpoint blob (SQLite refuses blobs over ~1 GB)
MAX_BATCH_BYTES = 512 * 2**20  # activations and their gradients for one mini-batch
OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "rmsprop": 1, "adam": 2}
ARRAYS_PER_UNIT = 8  # per row and hidden unit: pre-activation, BN output, activation, masks, grads


def model_size(spec: ModelSpec, batch_size: int, optimizer: str = "adam") -> dict[str, int]:
    """``{"params", "checkpoint_bytes", "batch_bytes"}`` of ``spec`` trained with ``optimizer``
    on mini-batches of ``batch_size`` rows (estimates from the shapes; nothing is allocated)."""
    itemsize = np.dtype(spec.dtype).itemsize
    params = sum(int(np.prod(s)) for s in param_shapes(spec).values())
    buffers = sum(int(np.prod(s)) for s in buffer_shapes(spec).values())
    slots = OPTIMIZER_SLOTS.get(optimizer, 2)
    units = sum(spec.hidden)
    per_row = spec.n_inputs * 2 + units * ARRAYS_PER_UNIT + spec.n_outputs * 3
    return {
        "params": params,
        "checkpoint_bytes": (params * (1 + slots) + buffers) * itemsize,
        "batch_bytes": int(batch_size) * per_row * itemsize,
    }


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 2**10:,.0f} KB"


def check_size(spec: ModelSpec, batch_size: int, optimizer: str = "adam") -> dict[str, int]:
    """``model_size``, or a ValueError naming the limit, the size asked for and the model."""
    size = model_size(spec, batch_size, optimizer)
    what = (f"hidden={list(spec.hidden)} on {spec.n_inputs} inputs, {spec.dtype}, "
            f"{optimizer}, batch size {batch_size}")
    if size["params"] > MAX_PARAMS:
        raise ValueError(
            f"model too large: {size['params']:,} parameters asked for ({what}); the limit is "
            f"{MAX_PARAMS:,}: use fewer or narrower hidden layers"
        )
    if size["checkpoint_bytes"] > MAX_CHECKPOINT_BYTES:
        raise ValueError(
            f"model too large to checkpoint: {_mb(size['checkpoint_bytes'])} a checkpoint asked "
            f"for ({what}); the limit is {_mb(MAX_CHECKPOINT_BYTES)}: use fewer or narrower "
            "hidden layers, or float32"
        )
    if size["batch_bytes"] > MAX_BATCH_BYTES:
        raise ValueError(
            f"batch too large: about {_mb(size['batch_bytes'])} of memory for one mini-batch "
            f"asked for ({what}); the limit is {_mb(MAX_BATCH_BYTES)}: use a smaller batch size "
            "or narrower layers"
        )
    return size
