"""Flat storage for the training step: every parameter laid end to end in one vector.

The parameters, their gradients, the optimizer's slots and one scratch vector are each a single
flat array; the per-parameter arrays are views into them (weight matrices first, so the L2
term touches one contiguous slice). One update-rule call then updates every parameter, which
is what makes a step of a tiny network cheap. The batch-norm running averages (and the batch
statistics of the current step) are two more flat vectors, so updating every running average
is three operations.

Loading copies a ``TrainState`` in; ``snapshot`` copies out at an epoch boundary, so the
arena's arrays are never shared with a state. Between those points the optimizer slots may owe
deferred decays (``lag``, see ``optim.settle``); a snapshot takes settled slots only.
"""

from __future__ import annotations

import numpy as np

from engine.nn.model import ModelSpec, buffer_shapes, param_shapes
from engine.nn.optim import SLOTS, opt_state_matches

Snapshot = tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...], int]


def _views(flat: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    views, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        views[name] = flat[offset : offset + size].reshape(shape)
        offset += size
    return views


class Arena:
    """Flat parameter, gradient, slot and buffer storage for one model and one optimizer."""

    def __init__(self, spec: ModelSpec, optimizer: str) -> None:
        shapes = param_shapes(spec)
        # weights first: the L2 penalty then covers the slice [0:n_weights]
        order = sorted(shapes, key=lambda name: not name.startswith("W"))
        self.param_shapes = {name: shapes[name] for name in order}
        self.buffer_shapes = buffer_shapes(spec)
        self.spec = spec
        self.optimizer = optimizer
        dtype = spec.dtype
        size = sum(int(np.prod(s)) for s in self.param_shapes.values())
        self.n_weights = sum(int(np.prod(s)) for n, s in shapes.items() if n.startswith("W"))
        self.w = np.zeros(size, dtype)  # all parameters
        self.g = np.zeros(size, dtype)  # their gradients
        self.scratch = np.zeros(size, dtype)
        self.slot_names = SLOTS[optimizer]
        self.slots = tuple(np.zeros(size, dtype) for _ in self.slot_names)
        self.step = 0  # optimizer updates so far (Adam's bias correction)
        self.lag = 0  # decays the slots still owe (optim.settle); 0 when loaded or settled
        n_buf = sum(int(np.prod(s)) for s in self.buffer_shapes.values())
        self.running = np.zeros(n_buf, dtype)  # running_mean1, running_var1, ...
        self.batch_stats = np.zeros(n_buf, dtype)  # this step's batch mean1, var1, ...
        self.stats_scratch = np.zeros(n_buf, dtype)
        self.params = _views(self.w, self.param_shapes)
        self.grads = _views(self.g, self.param_shapes)
        self.buffers = _views(self.running, self.buffer_shapes)
        self.stats = _views(self.batch_stats, self.buffer_shapes)

    def load(
        self,
        params: dict[str, np.ndarray],
        buffers: dict[str, np.ndarray],
        opt_state: dict[str, np.ndarray],
    ) -> None:
        """Copy a state in. Slots of another optimizer (or none) start again from zero."""
        for name, view in self.params.items():
            np.copyto(view, params[name])
        for name, view in self.buffers.items():
            np.copyto(view, buffers[name])
        self.lag = 0
        if opt_state_matches(opt_state, params, self.optimizer):
            self.step = int(opt_state["step"])
            for slot_name, slot in zip(self.slot_names, self.slots):
                for name, view in _views(slot, self.param_shapes).items():
                    np.copyto(view, opt_state[f"{slot_name}.{name}"])
        else:
            self.step = 0
            for slot in self.slots:
                slot.fill(0)

    def snapshot(self, into: Snapshot | None = None) -> Snapshot:
        """An independent copy of everything a checkpoint needs (a few flat copies), written
        into the arrays of an earlier snapshot ``into`` when given (no allocation). The slots
        must be settled first (``lag`` 0: see ``optim.settle``)."""
        if self.lag:
            raise RuntimeError(f"the optimizer slots owe {self.lag} decays: settle them first")
        if into is None:
            slots = tuple(s.copy() for s in self.slots)
            return self.w.copy(), self.running.copy(), slots, self.step
        w, running, slots, _ = into
        np.copyto(w, self.w)
        np.copyto(running, self.running)
        for dst, src in zip(slots, self.slots):
            np.copyto(dst, src)
        return w, running, slots, self.step

    def unpack(
        self, snap: Snapshot
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(params, buffers, opt_state) dicts in contract order from a ``snapshot``."""
        w, running, slots, step = snap
        flat_params = _views(w, self.param_shapes)
        params = {name: flat_params[name] for name in param_shapes(self.spec)}
        buffers = _views(running, self.buffer_shapes)
        opt_state = {"step": np.array(step, np.int64)}
        for slot_name, slot in zip(self.slot_names, slots):
            for name, view in _views(slot, self.param_shapes).items():
                opt_state[f"{slot_name}.{name}"] = view
        return params, buffers, opt_state

    def all_finite(self) -> bool:
        """True when every parameter and running average is finite (0 * x is 0 for finite x and
        nan for inf or nan, so one product and one sum decide it without allocating)."""
        np.multiply(self.w, 0, out=self.scratch)
        np.multiply(self.running, 0, out=self.stats_scratch)
        return bool(self.scratch.sum() == 0 and self.stats_scratch.sum() == 0)
