"""Slots: the runner's worker slots on an executor."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from engine.study.slots import Slots, warm_up


class SlowStart:
    """An executor whose submits wait until ``ready`` is set (a local pool's first submit waits
    for its fork server to import NumPy, SciPy and the engine); it records what it was given."""

    def __init__(self) -> None:
        self.ready, self.calls = threading.Event(), []

    def submit(self, fn, *args):
        assert self.ready.wait(10)
        self.calls.append(fn)
        future: Future = Future()
        future.set_result(None)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def test_warm_up_does_not_hold_the_runner_and_goes_before_the_first_unit():
    pool = SlowStart()
    slots = Slots({"workers": 2}, lambda study: pool).open()
    slots.warm_up({"kind": "moons", "n_samples": 50}, None)  # returns while the pool starts
    assert pool.calls == []
    done = threading.Event()

    def first_unit():
        slots.submit(len, {}, "run 0")
        done.set()

    threading.Thread(target=first_unit, daemon=True).start()
    assert not done.wait(0.2)  # the unit waits for the warm-ups
    pool.ready.set()
    assert done.wait(10)
    assert pool.calls == [warm_up, warm_up, len] and len(slots) == 1
