"""A trivial sampler that learns, for the runner's ask/tell and kill -9 tests.

``BestNeighbour`` proposes a point near the best finished trial (a random one before any); a
module, not a test file, so a runner started in another process can import it and find the kind
registered: ``python -m tests.engine.learning_sampler DB_PATH STUDY_ID`` runs a study's runner
with it and the slow stand-in work unit.
"""

from __future__ import annotations

import sys

import numpy as np

from engine.search import Sampler


class BestNeighbour(Sampler):
    kind = "test_best_neighbour"
    learns = True

    def __init__(self, spread: float = 0.05):
        self.spread = float(spread)

    def _ask(self, space, history, rng):
        units, losses, _ = history.observations()
        if len(losses) == 0:
            return rng.random(space.n_dims)
        return units[int(np.argmin(losses))] + rng.normal(0.0, self.spread, space.n_dims)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "spread": self.spread}


class Recorder(Sampler):
    """Asks random points and keeps, for every ask, the history it was given: ``(number,
    {trial number: (state, scores)})``, in the class-level ``seen`` (one runner at a time)."""

    kind = "test_recorder"
    learns = True
    seen: list[tuple[int, dict]] = []

    def _ask(self, space, history, rng):
        Recorder.seen.append((history.number, {t.number: (t.state, dict(t.scores))
                                               for t in history.trials}))
        return rng.random(space.n_dims)

    def to_dict(self) -> dict:
        return {"kind": self.kind}


def main(argv: list[str]) -> int:
    from engine.study.runner import run_study
    from tests.engine import fake_work

    status = run_study(argv[0], int(argv[1]), work_fn=fake_work.slow_segment,
                       max_segment_epochs=1)
    print(status, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
