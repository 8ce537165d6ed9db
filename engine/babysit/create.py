"""Start a session: from scratch (a model, a dataset, a config and a seed) or by adopting a trial.

Either way the session gets branch 0 and a root node whose checkpoint is the starting state: the
initial weights (epoch 0), or the trial's latest checkpoint (copied, so deleting the study does
not touch the session). An adopted trial's earlier epochs become nodes with their metrics but
without checkpoints, so its curve leads into the session's.
"""

from __future__ import annotations

import sqlite3

from engine.babysit.live import build_session_dataset
from engine.babysit.policy import check_auto, check_retention
from engine.babysit.replay import first_epoch_replays
from engine.data import DatasetSpec
from engine.nn import (
    ModelSpec,
    TrainConfig,
    TrainState,
    new_state,
    state_from_bytes,
    state_to_bytes,
)
from engine.nn.size import check_size
from engine.storage import blobs, studies
from engine.storage import sessions as store
from engine.storage.db import transaction


def _model_for(model: dict, n_inputs: int, n_classes: int) -> ModelSpec:
    model = dict(model)
    for key, value in (("n_inputs", n_inputs), ("n_classes", n_classes)):
        given = model.setdefault(key, value)
        if given != value:
            raise ValueError(
                f"model {key}={given!r} does not match the dataset, which has {key}={value}"
            )
    return ModelSpec.from_dict(model)


def _insert(
    conn: sqlite3.Connection,
    *,
    name: str,
    state: TrainState,
    dataset: dict,
    config: TrainConfig,
    seed: int,
    auto: dict | None,
    retention: dict | None,
    history: list[dict] = (),
    source_trial_id: int | None = None,
    event: tuple[str, dict] = ("created", {}),
) -> int:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"session name must be a non-empty string, got name={name!r}")
    auto = {**store.DEFAULT_AUTO, **check_auto(auto or {})}
    retention = {**store.DEFAULT_RETENTION, **check_retention(retention or {})}
    n_params = int(sum(p.size for p in state.params.values()))
    with transaction(conn):
        session_id = store.create_session(
            conn, name=name.strip(), model=state.spec.to_dict(), dataset=dataset,
            config=config.to_dict(), seed=seed, auto=auto, retention=retention,
            n_params=n_params, source_trial_id=source_trial_id,
        )
        store.insert_branch(conn, session_id, 0, None, None)
        parent_id = None
        by_epoch = {m["epoch"]: m for m in history}
        for epoch in range(0, state.epoch):  # an adopted trial's earlier epochs: no checkpoints
            parent_id = store.insert_node(
                conn, session_id=session_id, parent_id=parent_id, branch=0, epoch=epoch,
                checkpoint_id=None, config=config.to_dict(), metrics=by_epoch.get(epoch),
            )
        checkpoint_id = blobs.save_checkpoint(
            conn, state_to_bytes(state, history=False), epoch=state.epoch
        )
        head = store.insert_node(
            conn, session_id=session_id, parent_id=parent_id, branch=0, epoch=state.epoch,
            checkpoint_id=checkpoint_id, config=config.to_dict(),
            metrics=by_epoch.get(state.epoch),
        )
        store.update_session(conn, session_id, head_node_id=head)
        kind, payload = event
        store.add_event(conn, session_id, kind, actor="user", branch=0, epoch=state.epoch,
                        payload={"name": name.strip(), **payload})
    return session_id


def new_session(
    conn: sqlite3.Connection,
    *,
    name: str,
    model: dict,
    dataset: dict,
    config: dict,
    seed: int,
    auto: dict | None = None,
    retention: dict | None = None,
) -> int:
    """Create a session from scratch; return its id.

    ``model`` holds ``ModelSpec`` fields (``n_inputs``/``n_classes`` may be left out: they come
    from the dataset), ``dataset`` a ``DatasetSpec`` dict, ``config`` ``TrainConfig`` fields,
    ``seed`` the initial weights' seed. Raises ValueError naming a bad field.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got seed={seed!r}")
    spec = DatasetSpec.from_dict(dataset)
    data = build_session_dataset(conn, spec.to_dict())
    model_spec = _model_for(model, int(data.X_train.shape[1]), int(data.n_classes))
    train_config = TrainConfig.from_dict(config)
    check_size(model_spec, train_config.batch_size, train_config.optimizer)
    state = new_state(model_spec, seed)
    return _insert(
        conn, name=name, state=state, dataset=spec.to_dict(),
        config=train_config, seed=seed, auto=auto, retention=retention,
        event=("created", {"model": model_spec.to_dict(), "seed": seed}),
    )


def _trial_setup(conn: sqlite3.Connection, trial: dict):
    """A study trial's (study, dataset spec, data, model, config, seed), as its runner had."""
    # Imported here: engine.study.runner pulls in the executors (and Dask on first use).
    from engine.search.trial import trial_config
    from engine.study.runner import trial_seed

    study = studies.get_study(conn, trial["study_id"])
    spec = DatasetSpec.from_dict(study["dataset"])
    data = build_session_dataset(conn, spec.to_dict())
    model_kwargs, train_config, _ = trial_config(
        trial["params"], int(data.X_train.shape[1]), int(data.n_classes)
    )
    model = _model_for(model_kwargs, model_kwargs["n_inputs"], model_kwargs["n_classes"])
    seed = trial_seed(int(study["seed"]), int(trial["number"]))  # as the study runner seeds it
    return study, spec, data, model, TrainConfig.from_dict(train_config), seed


def trial_replays(conn: sqlite3.Connection, trial_id: int) -> bool:
    """Whether a replay from the trial's seed retraces its epochs: not for a babysat model
    returned to its study (trained from another session's), nor when one epoch from the seed
    is not bitwise its recorded epoch 1 (it trained stacked: rounding, then drift). Trains
    that one epoch."""
    trial = studies.get_trial(conn, trial_id)
    return _replays(conn, trial, studies.trial_metrics(conn, trial_id))


def _replays(conn: sqlite3.Connection, trial: dict, history: list[dict], setup=None) -> bool:
    """``trial_replays`` on the trial's recorded ``history`` (its ``_trial_setup`` if given)."""
    if trial.get("origin") == "session":
        return False
    first = next((m for m in history if m["epoch"] == 1), None)
    if first is None:
        return True
    _, _, data, model, config, seed = setup or _trial_setup(conn, trial)
    return first_epoch_replays(new_state(model, seed), config, data, first)


def adopt_trial(conn: sqlite3.Connection, trial_id: int, *, name: str | None = None,
                from_scratch: bool = False) -> int:
    """Create a session that continues a study's trial: its dataset, architecture and training
    hyperparameters, from its latest checkpoint (from scratch, epoch 0 with the trial's seed, if
    it has none or ``from_scratch``); return its id."""
    trial = studies.get_trial(conn, trial_id)
    setup = _trial_setup(conn, trial)
    study, spec, _, model, config, seed = setup
    blob = None if from_scratch else studies.trial_checkpoint(conn, trial_id)
    if blob is not None:
        state = state_from_bytes(blob)
        history = [m for m in studies.trial_metrics(conn, trial_id) if m["epoch"] <= state.epoch]
    else:
        state = new_state(model, seed)
        history = []
    name = name or f"{study['name']} · trial {trial['number']}"
    payload = {"study_id": study["id"], "trial_id": trial_id, "trial_number": trial["number"],
               "epoch": state.epoch,
               # its earlier epochs can be rebuilt from its seed (engine.babysit.replay)?
               "replay": _replays(conn, trial, history, setup),
               # its initial weights are its seed's (epoch 0 a target even when the later
               # epochs do not replay: a trial trained stacked)
               "initial": trial.get("origin") != "session"}
    return _insert(
        conn, name=name, state=state, dataset=spec.to_dict(), config=config, seed=seed,
        auto=None, retention=None, history=history, source_trial_id=trial_id,
        event=("adopted", payload),
    )
