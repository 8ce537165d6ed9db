"""The router (app/streamlit_app.py) over the page modules in the repository: it writes no
placeholder page files into the source tree at run time (issue 9), whatever page is opened."""

from __future__ import annotations

import subprocess

from app.common import PAGES
from tests.app.conftest import ROOT, no_exception


def tree() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "app").rglob("*")
                  if "__pycache__" not in p.parts)


def test_every_page_is_a_tracked_file_and_opening_them_writes_nothing(open_page):
    tracked = subprocess.run(["git", "ls-files", "app"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert {f"app/{path}" for path in PAGES.values()} <= set(tracked)
    before = tree()
    for name in PAGES:
        no_exception(open_page(name))
    assert tree() == before
