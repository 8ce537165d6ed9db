"""What the fork server of local workers imports, once, before it forks any worker.

``engine.run.execution`` names this module as the fork server's only preload. Importing it sets one
BLAS/OpenMP thread in the server's environment *before* NumPy and SciPy load their BLAS (a
library reads the variable once, when it loads: loaded with a thread pool, each would start
threads the workers never use, and spend ~0.1 s of CPU doing so), then imports everything a
worker needs to train: NumPy, SciPy's BLAS, the engine's data and training code, threadpoolctl.
Every worker forked from the server starts with all of it in memory, instead of ~0.3 s of
imports each. The garbage collector is then frozen (``gc.freeze``), the use it is made for: the
collector of a worker never walks, and so never writes to, the pages it shares with the server,
and the server exits without walking them either. Nothing else should import this module: it
changes the process environment.
"""

from __future__ import annotations

import gc
import os

from engine.run.execution import BLAS_VARIABLES

for _name in BLAS_VARIABLES:
    os.environ[_name] = "1"

import threadpoolctl  # noqa: E402, F401

import engine.data  # noqa: E402, F401
import engine.nn  # noqa: E402, F401
import engine.run.work  # noqa: E402, F401

gc.freeze()
