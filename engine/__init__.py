"""Panda & Caviar engine: NumPy networks, search, babysitting, storage and execution."""

__version__ = "0.1.0"  # = pyproject.toml's; a Dask cluster's workers must have the same
