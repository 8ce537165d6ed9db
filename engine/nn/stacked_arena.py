"""Flat storage for a population of P models trained as one stacked computation.

The solo ``arena.Arena`` lays one model's parameters end to end in a vector; a ``StackArena``
holds P such vectors as the rows of a (P, S) matrix (parameters, gradients, scratch and each
optimizer slot), and the batch-norm running averages and batch statistics as (P, B) matrices.
Each parameter is a view with a leading population axis, e.g. ``params["W1"]`` is (P, D, H),
so one ``np.matmul`` serves every member.

Members may be narrower than the stack (``width``): a member of hidden width h < H occupies the
top-left corner of each padded array, and everything else stays exactly zero (weights, biases,
gamma, beta, gradients and optimizer slots of padded units: a zero unit gets a zero gradient,
see ``stacked_step``). Loading copies a member's ``TrainState`` arrays in; ``member_state``
copies them out in the solo checkpoint format.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from engine.nn.model import ModelSpec, buffer_shapes, param_shapes
from engine.nn.optim import SLOTS, opt_state_matches


def _views(flat: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Per-name views (P, *shape) into the rows of flat (P, S)."""
    views, offset, p = {}, 0, flat.shape[0]
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        views[name] = flat[:, offset : offset + size].reshape((p, *shape))
        offset += size
    return views


def _offsets(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, int, tuple[int, ...]]]:
    """name -> (offset, size, shape) in a row."""
    at, offset = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        at[name] = (offset, size, shape)
        offset += size
    return at


@functools.lru_cache(maxsize=256)
def _corner(shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(0, n) for n in shape)


def stack_spec(specs: list[ModelSpec]) -> ModelSpec:
    """The padded spec of a stack: every member's spec but with the widest hidden layers.

    Members must agree on everything but their hidden widths (inputs, classes, depth,
    activation, batch norm, init, dtype)."""
    first = specs[0]
    for spec in specs[1:]:
        same = (spec.n_inputs, len(spec.hidden), spec.n_classes, spec.activation,
                spec.batch_norm, spec.dtype)
        want = (first.n_inputs, len(first.hidden), first.n_classes, first.activation,
                first.batch_norm, first.dtype)
        if same != want:
            raise ValueError(
                f"models of one stack may differ only in their hidden widths; got "
                f"{first.to_dict()} and {spec.to_dict()}"
            )
    hidden = tuple(max(s.hidden[i] for s in specs) for i in range(len(first.hidden)))
    return ModelSpec(first.n_inputs, hidden, first.n_classes, first.activation,
                     first.batch_norm, first.init, first.dtype)


class StackArena:
    """Parameters, gradients, optimizer slots and running averages of P members."""

    def __init__(self, specs: list[ModelSpec], optimizer: str) -> None:
        self.specs = list(specs)
        self.spec = spec = stack_spec(self.specs)
        self.p = p = len(self.specs)
        shapes = param_shapes(spec)
        order = sorted(shapes, key=lambda name: not name.startswith("W"))  # weights first (L2)
        self.param_shapes = {name: shapes[name] for name in order}
        self.buffer_shapes = buffer_shapes(spec)
        self.optimizer = optimizer
        self._shapes: dict = {}
        self.padded = any(s.hidden != spec.hidden for s in self.specs)
        dt = spec.dtype
        size = sum(int(np.prod(s)) for s in self.param_shapes.values())
        self.n_weights = sum(int(np.prod(s)) for n, s in shapes.items() if n.startswith("W"))
        self.w, self.g, self.scratch = (np.zeros((p, size), dt) for _ in range(3))
        self.slot_names = SLOTS[optimizer]
        self.slots = tuple(np.zeros((p, size), dt) for _ in self.slot_names)
        self.step = np.zeros(p, np.int64)  # each member's optimizer updates so far
        n_buf = max(1, sum(int(np.prod(s)) for s in self.buffer_shapes.values()))
        self.running, self.batch_stats = np.zeros((p, n_buf), dt), np.zeros((p, n_buf), dt)
        self.params = _views(self.w, self.param_shapes)
        self.grads = _views(self.g, self.param_shapes)
        self.buffers = _views(self.running, self.buffer_shapes)
        self.stats = _views(self.batch_stats, self.buffer_shapes)
        self.slot_views = [_views(slot, self.param_shapes) for slot in self.slots]
        # each member's arrays as views into one row (S,) or (B,): name -> (offset, shape)
        self._param_at = _offsets(self.param_shapes)
        self._buffer_at = _offsets(self.buffer_shapes)
        # per hidden layer i: (P, 1, H) 1.0 for a member's real units, 0.0 for padding
        self.unit_masks = []
        for i, width in enumerate(spec.hidden):
            mask = np.zeros((p, 1, width), dt)
            for j, s in enumerate(self.specs):
                mask[j, 0, : s.hidden[i]] = 1
            self.unit_masks.append(mask)

    def member_shapes(self, j: int) -> tuple[dict, dict]:
        spec = self.specs[j]
        if spec not in self._shapes:
            self._shapes[spec] = (param_shapes(spec), buffer_shapes(spec))
        return self._shapes[spec]

    def load(self, j: int, params: dict, buffers: dict, opt_state: dict) -> None:
        """Copy member j's state into row j (padding zero). Slots of another optimizer (or
        none) start again from zero, as in the solo arena."""
        pshapes, bshapes = self.member_shapes(j)
        for row in (self.w, self.running, *self.slots):
            row[j].fill(0)
        for name, shape in pshapes.items():
            self.params[name][j][_corner(shape)] = params[name]
        for name, shape in bshapes.items():
            self.buffers[name][j][_corner(shape)] = buffers[name]
        if opt_state_matches(opt_state, params, self.optimizer):
            self.step[j] = int(opt_state["step"])
            for slot_name, views in zip(self.slot_names, self.slot_views):
                for name, shape in pshapes.items():
                    views[name][j][_corner(shape)] = opt_state[f"{slot_name}.{name}"]
        else:
            self.step[j] = 0

    def member_state(self, j: int, w: np.ndarray, running: np.ndarray,
                     slots: tuple[np.ndarray, ...], step: int) -> tuple[dict, dict, dict]:
        """(params, buffers, opt_state) of member j, fresh arrays in the solo layout, from
        rows (S,), (B,) and slot rows (S,) of a snapshot."""
        pshapes, bshapes = self.member_shapes(j)

        def take(row: np.ndarray, at: dict, shapes: dict) -> dict:
            out = {}
            for name, shape in shapes.items():  # (np.prod here was half the time)
                offset, size, full = at[name]
                out[name] = np.array(row[offset : offset + size].reshape(full)[_corner(shape)])
            return out

        params = take(w, self._param_at, pshapes)
        buffers = take(running, self._buffer_at, bshapes)
        opt_state = {"step": np.array(step, np.int64)}
        arena_order = {name: pshapes[name] for name in self.param_shapes}  # as Arena.unpack
        for slot_name, slot in zip(self.slot_names, slots):
            for name, arr in take(slot, self._param_at, arena_order).items():
                opt_state[f"{slot_name}.{name}"] = arr
        return params, buffers, opt_state

    def clear(self, j: int) -> None:
        """Zero member j (it left the stack): its row then computes finite nothing."""
        for row in (self.w, self.g, self.running, *self.slots):
            row[j].fill(0)

    def finite_rows(self) -> np.ndarray:
        """(P,) True where every parameter and running average of the member is finite."""
        np.multiply(self.w, 0, out=self.scratch)
        ok = self.scratch.sum(axis=1) == 0
        return ok & np.isfinite(self.running).all(axis=1)

    def nbytes(self) -> int:
        arrays = (self.w, self.g, self.scratch, self.running, self.batch_stats, *self.slots)
        return sum(a.nbytes for a in arrays)
