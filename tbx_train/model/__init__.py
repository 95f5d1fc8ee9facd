"""DINO-4scale in pure PyTorch, key-compatible with the official checkpoints.

`model, criterion, postprocessor = build_dino(config)`; see dino.py for the output contract.
"""

from tbx_train.model.build import build_dino

__all__ = ["build_dino"]
