"""Facades whose names load on first use (PEP 562), so importing a package stays quick.

``engine.study`` and ``engine.babysit`` are facades over several modules; a runner or a CLI's
``--help`` that imports one of their submodules must not pay for NumPy and the rest of the
engine. A package lists ``name -> module`` (a bare module name is one of the package's own) and
takes its ``__getattr__`` / ``__dir__`` from :func:`lazy_exports`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports[name]`` is the module that holds
    ``name`` (``"runner"`` means ``package + ".runner"``); a loaded name is cached."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = exports[name] if "." in exports[name] else f"{package}.{exports[name]}"
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
