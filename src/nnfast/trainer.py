"""Trainer (native API): the reference training loop on the native optimizers."""
from . import optimizer as _native_optimizer
from .reference import trainer as _ref
from .reference.trainer import CHECKPOINT_FORMAT, OPTIMIZER_NAMES, read_checkpoint_meta


class Trainer(_ref.Trainer):
    __doc__ = _ref.Trainer.__doc__
    _opt_module = _native_optimizer


__all__ = ["Trainer", "OPTIMIZER_NAMES", "CHECKPOINT_FORMAT", "read_checkpoint_meta"]
