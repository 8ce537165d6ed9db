"""``engine.babysit.validate`` is the function, however the package was imported: the checks
lived in a submodule of the same name, so once something imported ``engine.babysit.validate``
(the module) the package's ``validate`` was that module and ``babysit.validate(...)`` raised
"'module' object is not callable". The module is ``engine.babysit.checks`` now.

Run in a fresh interpreter: the order of imports is the point, and this process has imported
the package already."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROGRAM = """
import importlib
import engine.babysit.checks
import engine.babysit.commands
import engine.babysit.runner
import engine.babysit as babysit
from engine.babysit import validate
from engine.babysit.commands import validate as from_commands
from engine.babysit.checks import validate as from_checks
assert callable(babysit.validate) and babysit.validate is validate, babysit.validate
assert validate is from_commands is from_checks
try:
    importlib.import_module("engine.babysit.validate")
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("a module named engine.babysit.validate shadows the function")
assert babysit.validate is validate
print("ok")
"""


def test_validate_is_the_function_whatever_was_imported_first():
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
