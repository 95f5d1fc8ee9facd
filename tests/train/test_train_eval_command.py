"""`tbx-train eval` on a real (tiny) checkpoint prints the standard table and the TB protocol."""

import re

from tiny_run import tiny_run_config
from typer.testing import CliRunner

from tbx_train.cli import app as train_app
from tbx_train.data import write_synthetic_tbx11k
from tbx_train.runner import run_training


def test_eval_prints_the_standard_table_then_the_tb_protocol(tmp_path):
    root = tmp_path / "synth"
    write_synthetic_tbx11k(root, images=10, seed=1, size=64, val_fraction=0.4)
    run_training(tiny_run_config(root, tmp_path / "run", max_steps=1), write=lambda _: None)
    result = CliRunner().invoke(
        train_app,
        ["eval", "--checkpoint", str(tmp_path / "run" / "checkpoint.pth"),
         "--data-root", str(root), "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    standard, protocol = out.index("IoU metric: bbox"), out.index("TB protocol (DINO_TBX11K")
    assert standard < protocol
    assert re.search(r"TB protocol .*: \d+ of 4 images have TB boxes", out)
    assert re.search(r"TB-only class-agnostic AP \d\.\d{3}  AP50 \d\.\d{3}", out)
    assert re.search(r"FROC as the user's script: \d+ GT boxes; FPs from (\d+) images divided "
                     r"by 4 images", out)  # fmt: skip
    tb_images = int(re.search(r"FROC corrected: \d+ GT boxes; FPs from (\d+) images", out)[1])
    assert f"divided by {tb_images} images (the TB images scored" in out
    assert re.search(r"\nAP \d\.\d{3}  AP50 \d\.\d{3}\n?$", out)  # the summary line stays last
