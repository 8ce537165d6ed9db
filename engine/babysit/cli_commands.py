"""What ``python -m engine babysit <command>`` does (the parser is in ``engine.babysit.cli``).

Commands other than ``serve`` and ``step`` are applied at once in this process when no runner is
alive for the session (the CLI holds the runner slot meanwhile, so it is the one writer); when a
runner is alive they are queued for it. ``step`` trains in the foreground, printing each epoch,
when no runner is alive (Ctrl-C pauses; every finished epoch is stored); otherwise it queues the
run and prints the runner's epochs as they land.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from engine.babysit import runner as runner_mod
from engine.babysit.commands import execute
from engine.babysit.create import adopt_trial, new_session
from engine.babysit.flags import AUTO_FLAGS, TRAIN_FLAGS
from engine.babysit.views import list_sessions, session_curves, session_events, session_view
from engine.run.host import RunnerHost
from engine.storage import runners
from engine.storage import sessions as store
from engine.storage.db import connect, db_path_of

KIND = "session"


def _fmt(value, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def format_outcome(outcome: dict) -> str:
    """One line per epoch tried, plus the babysitter's action if any."""
    if outcome["kind"] == "diverged":
        line = f"epoch {outcome['epoch']:4d}  branch {outcome['branch']}  DIVERGED: " \
               f"{outcome['message']}"
    else:
        m = outcome["metrics"]
        line = (
            f"epoch {outcome['epoch']:4d}  branch {outcome['branch']}  "
            f"train_loss {_fmt(m['train_loss'])}  train_acc {_fmt(m['train_acc'], '.3f')}  "
            f"val_loss {_fmt(m['val_loss'])}  val_acc {_fmt(m['val_acc'], '.3f')}  "
            f"lr {m['learning_rate']:.3g}  ({m['seconds']:.2f} s)"
        )
    if outcome.get("auto") and outcome.get("status") == "paused":
        line += f"\n  {outcome['auto']}"
    elif outcome.get("auto"):
        line += f"\n  auto-babysitter: {outcome['auto']}: {outcome.get('auto_action') or 'acted'}"
    return line


def _config_from(args: argparse.Namespace) -> dict:
    return {f: getattr(args, f) for _, f, _ in TRAIN_FLAGS if getattr(args, f) is not None}


def _auto_from(args: argparse.Namespace) -> dict:
    return {f: getattr(args, f) for _, f, _, _ in AUTO_FLAGS if getattr(args, f) is not None}


def cmd_new(args: argparse.Namespace) -> int:
    conn = connect(args.db)
    dataset = {"kind": args.dataset, "n_samples": args.n_samples, "noise": args.noise,
               "seed": args.data_seed, "val_fraction": args.val_fraction}
    if args.n_classes is not None:
        dataset["n_classes"] = args.n_classes
    model = {"hidden": [int(h) for h in args.hidden.split(",") if h.strip()],
             "activation": args.activation, "batch_norm": not args.no_batch_norm,
             "init": args.init}
    auto = {"enabled": True, **_auto_from(args)} if args.auto else None
    session_id = new_session(
        conn, name=args.name or f"{args.dataset} {args.hidden}", model=model, dataset=dataset,
        config=_config_from(args), seed=args.seed, auto=auto,
    )
    print(f"session {session_id} created")
    return 0


def cmd_adopt(args: argparse.Namespace) -> int:
    conn = connect(args.db)
    if args.epoch is not None:  # checked: only the kept checkpoint can be forked
        from engine.study.roundtrip import fork_trial

        session_id = fork_trial(conn, args.trial_id, epoch=args.epoch, name=args.name)
    else:
        session_id = adopt_trial(conn, args.trial_id, name=args.name)
    view = session_view(conn, session_id)
    print(f"session {session_id} adopted trial {args.trial_id} at epoch {view['head_epoch']}")
    return 0


def _follow(conn, session_id: int, intent_id: int) -> int:
    """Print the runner's epochs until the queued run was taken and has ended."""
    since = max((e["id"] for e in session_events(conn, session_id)), default=0)
    seen_nodes = {n["id"] for n in store.session_nodes(conn, session_id)}
    while True:
        # The state is read BEFORE the epochs: an epoch the runner wrote just before it went
        # idle is then printed in this same pass, not lost to the return below.
        view = session_view(conn, session_id)
        taken = all(i["id"] != intent_id for i in runners.pending_intents(conn, KIND, session_id))
        for node in store.session_nodes(conn, session_id):
            if node["id"] not in seen_nodes:
                seen_nodes.add(node["id"])
                metrics = {f: node[f] for f in store.METRIC_FIELDS}
                print(format_outcome({"kind": "epoch", "epoch": node["epoch"],
                                      "branch": node["branch"], "metrics": metrics}))
        for event in session_events(conn, session_id, since_id=since):
            since = event["id"]
            if event["kind"] in ("rollback", "set", "diverged", "failed", "rejected"):
                print(f"  [{event['actor']}] {event['kind']} {event['payload']}")
        if taken and view["status"] != "running":
            print(f"status {view['status']} at epoch {view['head_epoch']} "
                  f"(branch {view['branch']})")
            return 0 if view["status"] in ("idle", "paused") else 1
        if not view["runner_alive"]:
            print("the runner died; run `babysit step` again to continue", file=sys.stderr)
            return 1
        time.sleep(0.2)


def cmd_step(args: argparse.Namespace) -> int:
    conn = connect(args.db)
    epochs = None if args.until_paused else args.epochs
    if runners.runner_alive(conn, KIND, args.session_id):
        intent_id = runner_mod.send(conn, args.session_id, "run", epochs=epochs)
        print(f"queued for the runner: run {epochs or 'until paused'} epoch(s)")
        return _follow(conn, args.session_id, intent_id)
    runner_mod.validate_command(conn, args.session_id, "run", {"epochs": epochs})
    intent_id = runners.post_intent(conn, KIND, args.session_id, "run", {"epochs": epochs})
    code = runner_mod.serve(
        conn, args.session_id, idle_exit=0.0, on_outcome=lambda o: print(format_outcome(o)),
    )
    if code == 1:  # a runner appeared meanwhile: it has our intent
        return _follow(conn, args.session_id, intent_id)
    view = session_view(conn, args.session_id)
    print(f"status {view['status']} at epoch {view['head_epoch']} (branch {view['branch']})"
          + (f": {view['message']}" if view["message"] else ""))
    return code if code else (0 if view["status"] in ("idle", "paused") else 1)


def _command(args: argparse.Namespace, command: str, payload: dict) -> int:
    conn = connect(args.db)
    sid = args.session_id
    with RunnerHost(db_path_of(conn), KIND, sid, signals=False) as host:
        if host.claimed:  # no runner is alive: this process is the one writer meanwhile
            runner_mod._apply_intents(conn, host, sid)  # anything queued earlier goes first
            clean = execute(conn, sid, command, payload)["payload"]
    if host.claimed:
        print(f"{command} applied: {clean}")
        view = session_view(conn, sid)
        if view["status"] == "running":
            print("the session is running but no runner is alive: `babysit step "
                  f"{sid}` or `babysit serve {sid}` continues it")
    else:
        runner_mod.send(conn, sid, command, **payload)
        print(f"{command} queued for the runner: {payload}")
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    return _command(args, "pause", {})


def cmd_set(args: argparse.Namespace) -> int:
    payload = _config_from(args)
    for pair in args.other or ():
        key, _, value = pair.partition("=")
        try:
            payload[key.strip()] = json.loads(value)
        except ValueError:
            payload[key.strip()] = value
    if not payload:
        print("set: give at least one hyperparameter, e.g. --lr 0.001", file=sys.stderr)
        return 2
    return _command(args, "set", payload)


def cmd_rollback(args: argparse.Namespace) -> int:
    payload = {"epoch": args.epoch} if args.epoch is not None else {"node_id": args.node}
    if args.restore_config:
        payload["restore_config"] = True
    return _command(args, "rollback", payload)


def cmd_auto(args: argparse.Namespace) -> int:
    return _command(args, "auto", {"enabled": args.on, **_auto_from(args)})


def cmd_pace(args: argparse.Namespace) -> int:
    return _command(args, "pace", {"epochs_per_second": None if args.off else args.eps})


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through serve's finally: the slot is released


def cmd_serve(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # a running session stays "running"
    conn = connect(args.db)
    return runner_mod.serve(conn, args.session_id, idle_exit=args.idle_exit,
                            on_outcome=lambda o: print(format_outcome(o), flush=True))


def cmd_list(args: argparse.Namespace) -> int:
    conn = connect(args.db)
    print(f"{'id':>4}  {'status':<9} {'epoch':>5} {'branch':>6} {'runner':<6} name")
    for s in list_sessions(conn):
        print(f"{s['id']:>4}  {s['status']:<9} {s['head_epoch']:>5} {s['branch']:>6} "
              f"{'alive' if s['runner_alive'] else '-':<6} {s['name']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    conn = connect(args.db)
    v = session_view(conn, args.session_id)
    print(f"session {v['id']}: {v['name']}")
    print(f"  status {v['status']}{': ' + v['message'] if v['message'] else ''}; head epoch "
          f"{v['head_epoch']} on branch {v['branch']}; runner "
          f"{'alive (pid ' + str(v['runner']['pid']) + ')' if v['runner_alive'] else 'none'}"
          + ("; NEEDS A RUNNER" if v["needs_runner"] else ""))
    print(f"  model {v['model']}")
    print(f"  config {v['config']}")
    print(f"  auto {v['auto']}; parameters {v['n_params']}")
    for curve in session_curves(conn, args.session_id):
        origin = "" if curve["parent_branch"] is None else \
            f" from branch {curve['parent_branch']} at epoch {curve['fork_epoch']}"
        flags = " (abandoned)" if curve["abandoned"] else (" (current)" if curve["current"] else "")
        print(f"\nbranch {curve['branch']}{origin}{flags}")
        print(f"  {'epoch':>5} {'train_loss':>10} {'val_loss':>9} {'val_acc':>7} {'lr':>9}  ckpt")
        for p in curve["points"]:
            lr = "-" if p["learning_rate"] is None else f"{p['learning_rate']:.3g}"
            ckpt = "yes" if p["has_checkpoint"] else "-"
            print(f"  {p['epoch']:>5} {_fmt(p['train_loss']):>10} {_fmt(p['val_loss']):>9} "
                  f"{_fmt(p['val_acc'], '.3f'):>7} {lr:>9}  {ckpt}")
    print("\nevents")
    for e in session_events(conn, args.session_id)[-args.events:]:
        print(f"  #{e['id']:<4} epoch {e['epoch']:>4} branch {e['branch']:>2} [{e['actor']}] "
              f"{e['kind']} {e['payload'] if e['payload'] else ''}")
    return 0


