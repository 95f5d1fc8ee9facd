"""Safe checkpoint reading for tbx-doctor: never executes pickled code, never loads tensor data.

`summarize_checkpoint(path)` reads what a checkpoint holds (tbx-train, official DINO, DETR family);
`predict_resume(summary, epochs=..., ...)` says what resuming it with a plan would do.
No torch import: the pickle is interpreted with inert stand-ins (see pickle_reader).
"""

from tbx_doctor.checkpoint.resume import ResumePrediction, StrategyDifference, predict_resume
from tbx_doctor.checkpoint.summary import CheckpointSummary, summarize_checkpoint

__all__ = [
    "CheckpointSummary",
    "ResumePrediction",
    "StrategyDifference",
    "predict_resume",
    "summarize_checkpoint",
]
