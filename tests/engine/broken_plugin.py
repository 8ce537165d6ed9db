"""A CLI plug-in whose own import fails: engine.cli must not hide the error."""

import engine.no_such_module  # noqa: F401
