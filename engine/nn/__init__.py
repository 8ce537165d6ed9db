"""engine.nn: the pure-NumPy neural-network core.

Reference layers and losses (``layers``, ``losses``) as forward/backward pairs, the MLP
(``model``), update rules (``optim``), the allocation-free training step (``arena``, ``fast``),
checkpoints (``state``), ``train_segment`` (``train``), ``train_stacked`` (a population trained
as one computation: ``stacked*``), network health (``health``) and an sklearn-style facade
(``estimator``). Signatures are pinned in docs/CONTRACTS.md.
"""

from engine.nn import layers, losses
from engine.nn.config import DECAYS, OPTIMIZERS, TrainConfig
from engine.nn.estimator import MLPClassifier
from engine.nn.health import epoch_health
from engine.nn.init import he_init, xavier_init
from engine.nn.losses import l2_penalty, sigmoid_cross_entropy, softmax_cross_entropy
from engine.nn.model import ModelSpec, init_params, predict_proba
from engine.nn.optim import learning_rate_at
from engine.nn.stacked import train_stacked
from engine.nn.state import TrainState, new_state, sha256_hex, state_from_bytes, state_to_bytes
from engine.nn.train import SegmentResult, train_segment

__all__ = [
    "DECAYS",
    "OPTIMIZERS",
    "MLPClassifier",
    "ModelSpec",
    "SegmentResult",
    "TrainConfig",
    "TrainState",
    "epoch_health",
    "he_init",
    "init_params",
    "l2_penalty",
    "layers",
    "learning_rate_at",
    "losses",
    "new_state",
    "predict_proba",
    "sha256_hex",
    "sigmoid_cross_entropy",
    "softmax_cross_entropy",
    "state_from_bytes",
    "state_to_bytes",
    "train_segment",
    "train_stacked",
    "xavier_init",
]
