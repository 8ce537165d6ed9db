"""DatasetSpec: the JSON description from which any process rebuilds a dataset deterministically.

A spec is data. `DatasetSpec.from_dict(spec.to_dict()) == spec`, and `build_dataset(spec)` gives
the same arrays, bit for bit, in every process. Which fields a kind uses:

| kind                                 | uses                                           |
|--------------------------------------|------------------------------------------------|
| moons, circles, xor                  | n_samples, noise (always 2 classes)            |
| spirals, blobs                       | n_samples, noise, n_classes                    |
| synthetic                            | n_samples, noise, n_classes, n_features        |
| digits                               | (the fixed 1,797 images)                       |
| csv                                  | csv_sha256, label_column                       |

Every kind uses seed (data generation and the split), val_fraction and standardize. Fields a kind
does not use are still validated but otherwise ignored, so a form may keep them when the kind
changes.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

TOY_KINDS: tuple[str, ...] = ("moons", "circles", "spirals", "blobs", "xor")
BUILTIN_KINDS: tuple[str, ...] = TOY_KINDS + ("digits", "synthetic")
KINDS: tuple[str, ...] = BUILTIN_KINDS + ("csv",)
CLASS_COUNT_KINDS: tuple[str, ...] = ("spirals", "blobs", "synthetic")  # kinds using n_classes

# Valid ranges, inclusive; the UI may use them for its widgets.
N_SAMPLES_RANGE = (10, 200_000)
NOISE_RANGE = (0.0, 10.0)
N_CLASSES_RANGE = (2, 100)
N_FEATURES_RANGE = (2, 10_000)
SEED_RANGE = (0, 2**63 - 1)
VAL_FRACTION_RANGE = (0.01, 0.9)
MAX_NAME_LENGTH = 200

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class DatasetSpec:
    """What to build: a built-in or uploaded dataset, its size, noise, seed and split."""

    kind: str
    n_samples: int = 500
    noise: float = 0.1
    n_classes: int = 2
    n_features: int = 20
    seed: int = 0
    val_fraction: float = 0.2
    standardize: bool = True
    csv_sha256: str = ""
    label_column: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got kind={self.kind!r}")
        # Store plain int/float (not NumPy scalars, not 0 for 0.0) so to_dict() is JSON-ready.
        for name, valid in (
            ("n_samples", N_SAMPLES_RANGE),
            ("n_classes", N_CLASSES_RANGE),
            ("n_features", N_FEATURES_RANGE),
            ("seed", SEED_RANGE),
        ):
            object.__setattr__(self, name, _check_int(name, getattr(self, name), valid))
        object.__setattr__(self, "noise", _check_float("noise", self.noise, NOISE_RANGE))
        object.__setattr__(
            self,
            "val_fraction",
            _check_float("val_fraction", self.val_fraction, VAL_FRACTION_RANGE),
        )
        if not isinstance(self.standardize, bool):
            raise ValueError(f"standardize must be true or false; got {self.standardize!r}")
        for name in ("csv_sha256", "label_column", "name"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string; got {getattr(self, name)!r}")
        if len(self.name) > MAX_NAME_LENGTH:
            raise ValueError(
                f"name must be at most {MAX_NAME_LENGTH} characters; got {len(self.name)}"
            )
        if self.csv_sha256 and not _SHA256_RE.fullmatch(self.csv_sha256):
            raise ValueError(
                "csv_sha256 must be 64 lowercase hex digits (see csv_sha256(text)); "
                f"got {self.csv_sha256!r}"
            )
        if self.kind in CLASS_COUNT_KINDS and self.n_samples < 2 * self.n_classes:
            raise ValueError(
                f"n_samples={self.n_samples} is too small for n_classes={self.n_classes}: each "
                f"class needs at least 2 samples (one for training, one for validation); use "
                f"n_samples >= {2 * self.n_classes}"
            )
        if self.kind == "csv":
            if not self.csv_sha256:
                raise ValueError("kind 'csv' needs csv_sha256 (the hash of the uploaded text)")
            if not self.label_column:
                raise ValueError("kind 'csv' needs label_column (the name of the label column)")

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetSpec:
        """Inverse of to_dict; missing fields take their defaults, unknown keys are an error."""
        if not isinstance(d, dict):
            raise ValueError(f"a DatasetSpec dict is needed; got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known, key=str)
        if unknown:
            raise ValueError(
                f"unknown DatasetSpec field(s): {', '.join(map(repr, unknown))}; "
                f"valid fields are {', '.join(sorted(known))}"
            )
        if "kind" not in d:
            raise ValueError(f"a DatasetSpec needs 'kind', one of {', '.join(KINDS)}")
        return cls(**d)


def _check_int(name: str, value: Any, valid: tuple[int, int]) -> int:
    low, high = valid
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer in [{low}, {high}]; got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}]; got {name}={value}")
    return int(value)


def _check_float(name: str, value: Any, valid: tuple[float, float]) -> float:
    low, high = valid
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number in [{low}, {high}]; got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}]; got {name}={value}")
    return float(value)
