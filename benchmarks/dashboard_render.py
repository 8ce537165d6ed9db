"""How long each dashboard page takes to render server-side on a big study.

Run from the repository root:

    .venv/bin/python benchmarks/dashboard_render.py [--trials 1000] [--epochs 50]

It writes a study of 1,000 trials x 50 epochs (and a second one of 100 trials for Compare) into a
temporary database through the storage API, then runs each page through Streamlit's AppTest (the
real router, the real page scripts, the figures serialised as they would be for a browser) and
prints the median of 5 runs after a warm-up, per page and per view of the live study page.
Target: every page under 1 s. The views are timed twice: on all trials, then with a linked
selection on (400 trials picked, a learning-rate range, the top 50%); wall and CPU time each
(CPU: this process, the page's thread included; on a loaded machine wall time also counts the
wait for a core). AppTest recompiles each page script on every run (Streamlit's server keeps
the bytecode), so its times carry that too.

First, the study page's figures on their own (the pure builders, with the reads they need, and
parameter importance with its advice): each one's time and its ratio to a reference measured in
the same run, building the bare trials table (the rows the Trials view shows). Target: all the
figures together under 1 s. ``--figures-only`` skips the pages.
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
    "Importance",
    "Hands on",
    "Export",
]


def timed(run, clock=time.perf_counter) -> float:
    run()  # warm-up: imports, caches
    times = []
    for _ in range(REPEATS):
        start = clock()
        run()
        times.append(clock() - start)
    return statistics.median(times)


def timed_both(run) -> tuple[float, float]:
    """(wall, cpu) medians of ``REPEATS`` runs after a warm-up; CPU time is this process's
    (AppTest runs the page on a thread of this process, so it counts)."""
    run()
    walls, cpus = [], []
    for _ in range(REPEATS):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def figures(conn, study_id: int) -> None:
    """Time every figure of the study page against building the bare trials table."""
    from app.charts.curves import curves_figure
    from app.charts.importance import importance_figure, order_by_importance
    from app.charts.search import (
        best_so_far_figure,
        best_trial,
        pair_scatter,
        parallel_coordinates,
        params_vs_score,
    )
    from app.common import running_now
    from engine import study as studies
    from engine.search import Objective
    from engine.study.importance import advice, importance

    study = studies.get_study(conn, study_id)
    space, names = study["space"], list(study["space"]["params"])
    trials = studies.list_trials(conn, study_id)
    metrics = studies.study_metrics(conn, study_id)
    objective = Objective.from_dict(study["objective"])
    scores = studies.columns_scores(objective, metrics, study["rank"])
    shares = importance(trials, names, scores)["shares"]

    def table():
        return [{"trial": t["number"], "state": t["state"],
                 **{n: t["params"].get(n) for n in names},
                 "best val acc": t["best_val_acc"], "epochs": t["epochs_done"]} for t in trials]

    best = best_trial(trials)["number"]
    steps = [
        ("reference: the bare trials table", table),
        ("read: trials", lambda: studies.list_trials(conn, study_id)),
        ("live status (sidebar, each second)", lambda: running_now(conn)),
        ("read: every epoch's metrics", lambda: studies.study_metrics(conn, study_id)),
        ("curves (train + val loss)", lambda: curves_figure(
            metrics, "loss", ["train", "val"], best_number=best, top_numbers=[best])),
        ("each parameter vs score", lambda: params_vs_score(trials, space)),
        ("two parameters at a time", lambda: pair_scatter(trials, space, names[0], names[1])),
        ("parallel coordinates", lambda: parallel_coordinates(
            trials, order_by_importance(space, shares))),
        ("best so far (trials, epochs)", lambda: (best_so_far_figure(trials, x="trials"),
                                                  best_so_far_figure(trials, x="epochs"))),
        ("rank scores (best epoch, in SQLite)", lambda: studies.study_scores(conn, study)),
        ("importance: forest + permutation", lambda: importance(trials, names, scores)),
        ("importance bars + advice", lambda: (importance_figure(shares, n=len(scores),
                                                                method="rf"),
                                              advice(study, trials, scores, shares))),
    ]
    wall, cpu = {}, {}
    for name, fn in steps:
        wall[name] = timed(fn)
        cpu[name] = timed(fn, clock=time.process_time)
    ref = steps[0][0]
    print(f"\nthe study page's figures, median of {REPEATS} ({len(trials)} trials x "
          f"{len(metrics['epoch']) // max(1, len(trials))} epochs); CPU time is what this "
          "process used (on a loaded machine wall time also counts waiting for a core):")
    print(f"  {'':<36} {'wall ms':>8} {'cpu ms':>8} {'cpu / table':>12}")
    for name, _ in steps:
        print(f"  {name:<36} {wall[name] * 1000:8.1f} {cpu[name] * 1000:8.1f} "
              f"{cpu[name] / max(cpu[ref], 1e-9):11.1f}x")
    print("\nper view of the study page (the figures and reads each one builds):")
    read = ["read: trials"]
    for view, parts in [
        ("Curves and points (first time)", [*read, "read: every epoch's metrics",
                                            "curves (train + val loss)",
                                            "each parameter vs score"]),
        ("Curves and points (metrics cached)", [*read, "curves (train + val loss)",
                                                "each parameter vs score"]),
        ("Sampled points", [*read, "each parameter vs score", "two parameters at a time"]),
        ("Parallel coordinates", [*read, "parallel coordinates"]),
        ("Best so far", [*read, "best so far (trials, epochs)"]),
        ("Importance (first time; cached)", [*read, "rank scores (best epoch, in SQLite)",
                                             "importance: forest + permutation",
                                             "importance bars + advice", "parallel coordinates"]),
    ]:
        w, c = sum(wall[p] for p in parts), sum(cpu[p] for p in parts)
        print(f"  {view:<36} {w * 1000:8.1f} {c * 1000:8.1f} {c / max(cpu[ref], 1e-9):11.1f}x"
              f"   {'PASS' if c < 1.0 else 'FAIL'} (target: cpu < 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--figures-only", action="store_true", help="skip the pages")
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

    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    figures(conn, big)
    if args.figures_only:
        return
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

    rows = []  # (name, wall, cpu)
    for name, query in [
        ("overview", {}),
        ("data", {}),
        ("designer", {}),
        ("compare", {"studies": f"{big},{small}"}),
    ]:
        at = page(name, **query)
        wall, cpu = timed_both(at.run)
        assert not at.exception, [e.value for e in at.exception]
        rows.append((name, wall, cpu))
    from engine.storage import studies as store

    lrs = sorted(t["params"]["learning_rate"] for t in store.list_trials(conn, big))
    linked = {  # a box of 400 trials, a range on the learning rate (the middle half), top 50 %
        f"selection.{big}": list(range(0, 800, 2)),
        f"selection.ranges.{big}": {"learning_rate": {"low": lrs[len(lrs) // 4],
                                                      "high": lrs[3 * len(lrs) // 4]}},
    }
    for label, state in [("", {}), (" +sel", linked)]:
        at = page("studies", study=big)
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
        if state:
            at.number_input(key=f"selection.top.{big}").set_value(50)
        for view in VIEWS:
            at.segmented_control(key="study.view").set_value(view)
            wall, cpu = timed_both(at.run)
            assert not at.exception and not at.error, (view, [e.value for e in at.error])
            if state:
                assert "Showing" in at.info[0].value, at.info[0].value
            rows.append((f"studies{label}: {view}", wall, cpu))

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\nserver-side render time, median of {REPEATS} (study of {args.trials} trials x "
        f"{args.epochs} epochs; +sel: with a linked selection, a range and a top-50% cut; "
        f"load now {load}):"
    )
    print(f"  {'':<44} {'wall ms':>8} {'cpu ms':>8}")
    for name, wall, cpu in rows:
        flag = "" if wall < 1.0 else "   <-- wall over 1 s"
        print(f"  {name:<44} {wall * 1000:8.0f} {cpu * 1000:8.0f}{flag}")
    print(f"  worst: wall {max(r[1] for r in rows) * 1000:.0f} ms, cpu "
          f"{max(r[2] for r in rows) * 1000:.0f} ms")
    conn.close()


if __name__ == "__main__":
    main()
