"""Stop requests from SLURM: finish the optimizer step, save, exit 75 so the job is requeued.

SLURM warns before the time limit with `#SBATCH --signal=B:USR1@120` (the batch shell traps it
and forwards it) and sends SIGTERM before killing. The handlers only set a flag; the engine calls
`StopRequest.stop_signal(device)` after each optimizer step, which all-reduces the flag so every
rank stops after the same step, then saves a mid-epoch checkpoint (`next_iteration` = the next
micro-batch) and exits with `EXIT_REQUEUE`.

Once the run's last checkpoint is saved there is nothing left to stop: `ignore_late` sets the
signals to SIG_IGN, and `tbx-train run` leaves them so until the process ends. Restoring the default
action there instead let a late SIGUSR1 (SLURM warns 120 s before the limit, even when training
has just finished) kill the process during shutdown with exit 138, and the job was reported
FAILED with every epoch trained. A Python handler is no protection either: the interpreter resets
its own handlers to the default action while it finalises, but leaves SIG_IGN in place.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# No torch at import time: `tbx-train run` installs the handlers before its heavy imports, since
# SLURM's warning can arrive while torch is still loading (its default action kills the process).

EXIT_REQUEUE = 75  # EX_TEMPFAIL: stopped on request after saving a resumable checkpoint
STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class StopRequest:
    """A flag set by SIGUSR1/SIGTERM; use as a context manager so the old handlers come back."""

    def __init__(self, signals: Iterable[signal.Signals] = STOP_SIGNALS) -> None:
        self.signals = tuple(signals)
        self.signal_name: str | None = None
        self._previous: dict[signal.Signals, object] = {}
        self.late = False  # True once `ignore_late` ran: the work a stop would save is saved

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

    def ignore_late(self) -> None:
        """The final checkpoint is saved: from now on these signals are ignored (SIG_IGN).

        `restore` still puts back the earlier handlers (for callers inside a longer-lived
        process); `tbx-train run` does not call it after this, so the exit stays protected.
        """
        for sig in self.signals:
            previous = signal.signal(sig, signal.SIG_IGN)
            self._previous.setdefault(sig, previous)
        self.late = True

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

    def stop_signal(self, device: torch.device | str = "cpu") -> str | None:
        """The stop signal's name if any rank received one, else None (a collective).

        Call it on every rank after the same optimizer step so they all stop together; `device`
        must suit the process group (CUDA for NCCL). Without a group it is this process's flag.
        """
        import torch

        from tbx_train.distributed import all_reduce_max

        number = signal.Signals[self.signal_name].value if self.signal_name else 0
        agreed = int(all_reduce_max(torch.tensor([number], device=device)).item())
        return signal.Signals(agreed).name if agreed else None

    def should_stop(self, device: torch.device | str = "cpu") -> bool:
        """`stop_signal(device) is not None` (a collective as well)."""
        return self.stop_signal(device) is not None


def format_interrupt_line(signal_name: str, path: str, epoch: int, iteration: int) -> str:
    """The log contract's line after the mid-epoch save (epoch = the epoch being continued)."""
    return (
        f"Interrupted by {signal_name}: saved checkpoint {path} (epoch {epoch}, iteration "
        f"{iteration}); exiting with code {EXIT_REQUEUE} for requeue"
    )
