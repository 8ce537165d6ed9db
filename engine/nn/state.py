"""TrainState and its checkpoint format.

A checkpoint is an ``.npz`` archive: one ``.npy`` entry per array (``params/W1``,
``buffers/running_mean1``, ``opt/m.W1``, ``opt/step``, ...) and ``meta.json``, a JSON document
(stored as bytes) with the spec, the epoch, the generator's bit-generator state and the
history. It is read back with ``allow_pickle=False``. The archive is written with fixed
timestamps, so the same state always gives the same bytes and the same sha256.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import threading
import zipfile
from dataclasses import dataclass, field

import numpy as np

from engine.nn.config import as_int
from engine.nn.model import ModelSpec, buffer_shapes, init_params, param_shapes

FORMAT = 1
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class TrainState:
    """Everything needed to continue training bit for bit."""

    spec: ModelSpec
    params: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    opt_state: dict[str, np.ndarray]  # "step" and "{slot}.{param}" (see engine.nn.optim)
    epoch: int  # completed epochs
    rng_state: dict  # np.random.Generator(PCG64).bit_generator.state
    history: list[dict] = field(default_factory=list)  # one EpochMetrics dict per epoch


def new_state(spec: ModelSpec, seed: int) -> TrainState:
    """Fresh state: weights from ``np.random.default_rng(seed)``, which then also drives the
    shuffling and dropout of training (its state after initialisation is ``rng_state``)."""
    seed = as_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    params, buffers = init_params(spec, rng)
    return TrainState(spec, params, buffers, {"step": np.zeros((), np.int64)}, 0,
                      rng.bit_generator.state, [])


def copy_state(state: TrainState) -> TrainState:
    """A deep copy (fresh arrays)."""
    return TrainState(
        state.spec,
        {k: v.copy() for k, v in state.params.items()},
        {k: v.copy() for k, v in state.buffers.items()},
        {k: v.copy() for k, v in state.opt_state.items()},
        state.epoch,
        copy.deepcopy(state.rng_state),
        copy.deepcopy(state.history),
    )


def sha256_hex(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def state_to_bytes(state: TrainState, *, history: bool = True) -> bytes:
    """Serialise to ``.npz`` bytes (deterministic for a given state).

    ``history=False`` leaves the per-epoch metrics out (they come back as ``[]``): storage keeps
    those in its own tables, and a checkpoint per epoch that carried them would grow with the
    epoch count. Resuming needs only the weights, buffers, optimizer and RNG state.
    """
    meta = {
        "format": FORMAT,
        "spec": state.spec.to_dict(),
        "epoch": int(state.epoch),
        "rng_state": state.rng_state,
        "history": state.history if history else [],
    }
    entries = [("meta.json", np.frombuffer(json.dumps(meta).encode(), np.uint8))]
    for prefix, arrays in (("params", state.params), ("buffers", state.buffers),
                           ("opt", state.opt_state)):
        entries += [(f"{prefix}/{name}", arr) for name, arr in sorted(arrays.items())]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in entries:
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            with zf.open(info, "w", force_zip64=True) as f:
                arr = np.asarray(arr)
                f.write(_header_bytes(arr.dtype.str, arr.shape))
                f.write(arr.tobytes(order="C"))
    return buf.getvalue()


@functools.lru_cache(maxsize=1024)
def _header_bytes(dtype: str, shape: tuple[int, ...]) -> bytes:
    """The .npy header ``np.lib.format.write_array`` writes for a C-order array of this dtype
    and shape, made once: a checkpoint's 19 headers were half of its 0.55 ms to write."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buf, header)
    except ValueError:  # a header too long for version 1.0
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue()


_MAX_ENTRIES = 10_000
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


# CPython 3.11's compiler is not safe to enter from two threads at once: numpy's header reader
# (ast.literal_eval) failed now and then with "SystemError: AST constructor recursion depth
# mismatch" when thread-pool workers (the tests' executor) or the dashboard's threads loaded
# checkpoints together (2 of 4 runs of tests/engine/study). The header is tiny: one at a time.
_HEADER_LOCK = threading.Lock()


def _read_header(f, version: tuple[int, int]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of the .npy header at ``f`` (after its magic)."""
    size_bytes = f.read(2 if version == (1, 0) else 4)
    raw = f.read(int.from_bytes(size_bytes, "little"))
    return _parse_header(version, size_bytes + raw)


@functools.lru_cache(maxsize=1024)
def _parse_header(version: tuple[int, int], raw: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    """numpy's own header parser, once per distinct header: a stack's members share their
    shapes, and numpy's ``ast.literal_eval`` of each header was 40% of a checkpoint's load."""
    with _HEADER_LOCK:  # numpy parses it with ast.literal_eval: see the lock
        return _HEADER_READERS[version](io.BytesIO(raw))


def _read_arrays(blob: bytes) -> dict[str, np.ndarray]:
    """Every ``.npy`` entry of the archive, each checked before it is read: its header must
    declare no more bytes than the entry holds (a forged shape would otherwise allocate
    gigabytes), and no object dtype (that would need pickle)."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            infos = zf.infolist()
            if len(infos) > _MAX_ENTRIES:
                raise ValueError(f"checkpoint has {len(infos)} entries, at most {_MAX_ENTRIES}")
            arrays = {}
            for info in infos:
                name = info.filename.removesuffix(".npy")
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version not in _HEADER_READERS:
                        raise ValueError(f"checkpoint entry {name!r} is .npy version {version}")
                    shape, fortran, dtype = _read_header(f, version)
                    if dtype.hasobject:
                        raise ValueError(f"checkpoint entry {name!r} holds Python objects")
                    size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                    if size != info.file_size - f.tell():
                        raise ValueError(
                            f"checkpoint entry {name!r} declares {dtype}{list(shape)} "
                            f"({size} bytes) but holds {info.file_size - f.tell()} bytes"
                        )
                    # the data right after the header it was checked against, read once (not
                    # reopened and parsed again by np.lib.format.read_array: 2.4 -> 1.1 ms a
                    # checkpoint of 19 arrays, which a stack of 64 members loads every segment)
                    flat = np.frombuffer(f.read(size), dtype).copy()
                    arrays[name] = flat.reshape(shape, order="F" if fortran else "C")
            return arrays
    except ValueError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError,
            KeyError, TypeError, OverflowError, SyntaxError, MemoryError) as exc:
        # what zipfile and numpy's header parser raise on damaged bytes
        raise ValueError(f"checkpoint is not a readable .npz archive: "
                         f"{type(exc).__name__}: {exc}") from None


def _read_meta(raw: np.ndarray) -> dict:
    try:
        meta = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"checkpoint meta.json is not JSON text: {exc}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"checkpoint meta.json must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise ValueError(f"checkpoint format must be {FORMAT}, got {meta.get('format')!r}")
    missing = [k for k in ("spec", "epoch", "rng_state", "history") if k not in meta]
    if missing:
        raise ValueError(f"checkpoint meta.json lacks {', '.join(missing)}")
    epoch = meta["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"checkpoint epoch must be a whole number >= 0, got {epoch!r}")
    if not isinstance(meta["rng_state"], dict) or not isinstance(meta["history"], list):
        raise ValueError("checkpoint rng_state must be an object and history a list")
    if not isinstance(meta["spec"], dict):
        raise ValueError(f"checkpoint spec must be an object, got {meta['spec']!r:.80}")
    return meta


def state_from_bytes(blob: bytes) -> TrainState:
    """Read a checkpoint written by ``state_to_bytes`` (no pickle), checking it against its
    spec: every parameter and buffer present with the right shape and dtype. Any damaged or
    forged blob raises ValueError (never MemoryError, EOFError, AttributeError, ...)."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise ValueError(f"checkpoint must be bytes, got {type(blob).__name__}")
    arrays = _read_arrays(bytes(blob))
    if "meta.json" not in arrays:
        raise ValueError("checkpoint has no meta.json entry")
    meta = _read_meta(arrays.pop("meta.json"))
    try:
        spec = ModelSpec.from_dict(meta["spec"])
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"checkpoint spec is not a model spec: {exc}") from None
    groups: dict[str, dict[str, np.ndarray]] = {"params": {}, "buffers": {}, "opt": {}}
    for key, arr in arrays.items():
        prefix, _, name = key.partition("/")
        if prefix not in groups:
            raise ValueError(f"checkpoint has an unexpected entry {key!r}")
        groups[prefix][name] = arr
    for group, shapes in (("params", param_shapes(spec)), ("buffers", buffer_shapes(spec))):
        found = groups[group]
        if set(found) != set(shapes):
            raise ValueError(
                f"checkpoint {group} are {sorted(found)}, but the spec needs {sorted(shapes)}"
            )
        for name, shape in shapes.items():
            arr = found[name]
            if arr.shape != shape or arr.dtype != np.dtype(spec.dtype):
                raise ValueError(
                    f"checkpoint {group}/{name} is {arr.dtype}{list(arr.shape)}, "
                    f"expected {spec.dtype}{list(shape)}"
                )
    if "step" not in groups["opt"] or groups["opt"]["step"].shape != ():
        raise ValueError("checkpoint opt/step is missing or not a single number")
    shapes = param_shapes(spec)
    for key, arr in groups["opt"].items():
        name = key.partition(".")[2]
        if key != "step" and (name not in shapes or arr.shape != shapes[name]):
            raise ValueError(f"checkpoint opt/{key} has shape {list(arr.shape)}, which matches "
                             f"no parameter of the spec")
    return TrainState(spec, groups["params"], groups["buffers"], groups["opt"],
                      int(meta["epoch"]), meta["rng_state"], meta["history"])
