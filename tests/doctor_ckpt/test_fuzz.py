"""Corrupt pickles (random byte edits of a real data.pkl) raise DoctorError or nothing else."""

import io
import zipfile
from pathlib import Path
from tempfile import TemporaryDirectory

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from doctor_ckpt.factory import optimizer_and_scheduler
from tbx_doctor.checkpoint import predict_resume, summarize_checkpoint
from tbx_doctor.errors import DoctorError


def _real_checkpoint() -> dict[str, bytes]:
    state = {"class_embed.0.weight": torch.zeros(4, 2), "label_enc.weight": torch.zeros(5, 2)}
    optimizer, scheduler = optimizer_and_scheduler(state, steps=10, epochs_done=2, lr_drop=1)
    buffer = io.BytesIO()
    torch.save(
        {"model": state, "optimizer": optimizer, "lr_scheduler": scheduler, "epoch": 1}, buffer
    )
    with zipfile.ZipFile(buffer) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


ENTRIES = _real_checkpoint()
PICKLE = next(name for name in ENTRIES if name.endswith("data.pkl"))


@settings(max_examples=150, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(ENTRIES[PICKLE]) - 1), st.integers(0, 255)), max_size=4
    ),
    cut=st.integers(1, len(ENTRIES[PICKLE])),
)
def test_corrupt_pickle_is_summarized_or_refused(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(ENTRIES[PICKLE])
    for position, value in edits:
        data[position] = value
    with TemporaryDirectory() as folder:
        path = Path(folder) / "c.pth"
        with zipfile.ZipFile(path, "w") as archive:
            for name, content in ENTRIES.items():
                archive.writestr(name, bytes(data[:cut]) if name == PICKLE else content)
        try:
            summary = summarize_checkpoint(path)
        except DoctorError:
            return
        predict_resume(summary, epochs=3, batch_size=1, grad_accum=1, world_size=1, num_classes=4)
        summary.to_dict()
