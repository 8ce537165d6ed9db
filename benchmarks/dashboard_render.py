"""How long each dashboard page takes to render server-side on a big study.

Run from the repository root:

    .venv/bin/python benchmarks/dashboard_render.py [--trials 1000] [--epochs 50]

It writes a study of 1,000 trials x 50 epochs (and a second one of 100 trials for Compare) into a
temporary database through the storage API, then runs each page through Streamlit's AppTest (the
real router, the real page scripts, the figures serialised as they would be for a browser) and
prints the median of 5 runs after a warm-up, per page and per view of the live study page.
Target: every page under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPEATS = 5
VIEWS = [
    "Curves and points",
    "Trials",
    "Sampled points",
    "Parallel coordinates",
    "Best so far",
    "Zoom in",
    "Export",
]


def timed(run) -> float:
    run()  # warm-up: imports, caches
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="pc-render-")
    os.environ["PANDA_CAVIAR_DB"] = str(Path(tmp) / "render.db")
    from streamlit.testing.v1 import AppTest

    from engine.storage.db import connect
    from tests.app.fakes import fake_study

    conn = connect(os.environ["PANDA_CAVIAR_DB"])
    start = time.perf_counter()
    big = fake_study(conn, args.trials, args.epochs, name="big study")
    small = fake_study(conn, 100, args.epochs, name="small study", seed=1)
    print(
        f"built {args.trials} x {args.epochs} + 100 x {args.epochs} trials in "
        f"{time.perf_counter() - start:.1f} s ({tmp})"
    )

    app = str(ROOT / "app" / "streamlit_app.py")

    def page(name: str, **query):
        at = AppTest.from_file(app, default_timeout=60)
        for key, value in query.items():
            at.query_params[key] = str(value)
        at.run()
        if name != "overview":
            at.switch_page(f"app_pages/{name}.py")
            for key, value in query.items():
                at.query_params[key] = str(value)
        return at

    rows = []
    for name, query in [
        ("overview", {}),
        ("data", {}),
        ("designer", {}),
        ("compare", {"studies": f"{big},{small}"}),
    ]:
        at = page(name, **query)
        seconds = timed(at.run)
        assert not at.exception, [e.value for e in at.exception]
        rows.append((name, seconds))
    at = page("studies", study=big)
    at.run()
    for view in VIEWS:
        at.segmented_control(key="study.view").set_value(view)
        seconds = timed(at.run)
        assert not at.exception and not at.error, (view, [e.value for e in at.error])
        rows.append((f"studies: {view}", seconds))

    print(
        f"\nserver-side render time, median of {REPEATS} (study of {args.trials} trials x "
        f"{args.epochs} epochs):"
    )
    for name, seconds in rows:
        flag = "" if seconds < 1.0 else "   <-- over 1 s"
        print(f"  {name:<32} {seconds * 1000:7.0f} ms{flag}")
    conn.close()


if __name__ == "__main__":
    main()
