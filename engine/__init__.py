"""Panda & Caviar engine: NumPy networks, search, babysitting, storage and execution."""
