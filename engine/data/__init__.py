"""engine.data: built-in and uploaded datasets, described by a JSON spec, split and standardised.

`build_dataset(DatasetSpec(kind="moons", noise=0.2, seed=1))` gives a `Dataset` with float32
features and int64 labels, split (stratified, seeded) into training and validation parts and
standardised with the training part's statistics. Kinds: the 2-D toy sets (`TOY_KINDS`),
handwritten digits, a large synthetic set, and uploaded CSV files (`parse_csv`, `CSVError`).
"""

from engine.data.csv_parse import (
    CSVError,
    csv_columns,
    csv_sha256,
    decode_csv_bytes,
    parse_csv,
)
from engine.data.dataset import Dataset, build_dataset
from engine.data.spec import BUILTIN_KINDS, KINDS, TOY_KINDS, DatasetSpec
from engine.data.views import (
    describe,
    display_name,
    grid_for_boundary,
    model_coordinates,
    original_coordinates,
)

__all__ = [
    "BUILTIN_KINDS",
    "KINDS",
    "TOY_KINDS",
    "CSVError",
    "Dataset",
    "DatasetSpec",
    "build_dataset",
    "csv_columns",
    "csv_sha256",
    "decode_csv_bytes",
    "describe",
    "display_name",
    "grid_for_boundary",
    "model_coordinates",
    "original_coordinates",
    "parse_csv",
]
