"""tbx_train: DINO-4scale detection training for TBX11K (see README.md)."""

__version__ = "0.1.0"
