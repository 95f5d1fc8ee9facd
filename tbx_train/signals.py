"""Stop requests from SLURM: finish the optimizer step, save, exit 75 so the job is requeued.

SLURM warns before the time limit with `#SBATCH --signal=B:USR1@120` (the batch shell traps it
and forwards it) and sends SIGTERM before killing. The handlers only set a flag; the engine calls
`StopRequest.should_stop()` after each optimizer step, which all-reduces the flag so every rank
stops after the same step, then saves a mid-epoch checkpoint (`next_iteration` = the next
micro-batch) and exits with `EXIT_REQUEUE`.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from types import FrameType, TracebackType

import torch

from tbx_train.distributed import all_reduce_max

EXIT_REQUEUE = 75  # EX_TEMPFAIL: stopped on request after saving a resumable checkpoint
STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class StopRequest:
    """A flag set by SIGUSR1/SIGTERM; use as a context manager so the old handlers come back."""

    def __init__(self, signals: Iterable[signal.Signals] = STOP_SIGNALS) -> None:
        self.signals = tuple(signals)
        self.signal_name: str | None = None
        self._previous: dict[signal.Signals, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Only record it: saving inside a handler could interrupt a half-done optimizer step.
        if self.signal_name is None:
            self.signal_name = signal.Signals(signum).name

    def install(self) -> StopRequest:
        """Install the handlers (main thread only, as Python requires)."""
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        """Put back the handlers that were there before `install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def __enter__(self) -> StopRequest:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()

    @property
    def requested(self) -> bool:
        """True once this process received a stop signal."""
        return self.signal_name is not None

    def should_stop(self, device: torch.device | str = "cpu") -> bool:
        """Whether any rank was asked to stop (a collective: call it on every rank, same step).

        `device` must be the process group's device (CUDA for NCCL); without a group it is local.
        """
        flag = torch.tensor([1.0 if self.requested else 0.0], device=device)
        return bool(all_reduce_max(flag).item() > 0)


def format_interrupt_line(signal_name: str, path: str, epoch: int, iteration: int) -> str:
    """The log contract's line after the mid-epoch save (epoch = the epoch being continued)."""
    return (
        f"Interrupted by {signal_name}: saved checkpoint {path} (epoch {epoch}, iteration "
        f"{iteration}); exiting with code {EXIT_REQUEUE} for requeue"
    )
