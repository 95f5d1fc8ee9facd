"""tbx_doctor: evidence-based diagnosis of SLURM training jobs and checkpoints.

Start-up stays light: nothing here imports torch, pandas or matplotlib at module level.
"""

__version__ = "0.1.0"
