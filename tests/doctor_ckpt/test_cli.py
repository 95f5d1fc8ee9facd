"""`tbx-doctor inspect-ckpt` driven in-process: exact JSON fields and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tbx_doctor.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["inspect-ckpt", *args])
    return result.exit_code, result.output


def _json(*args: str) -> tuple[int, dict]:
    code, output = _invoke(*args, "--format", "json")
    return code, json.loads(output)


def test_incident_checkpoint_with_its_plan_trains_nothing(finished_official: Path) -> None:
    code, report = _json(str(finished_official), "--epochs", "50")
    assert code == 1
    assert report["schema"] == "tbx-doctor.inspect-ckpt/1"
    assert report["verdict"] == "problem"
    checkpoint, resume = report["checkpoint"], report["resume"]
    assert {k: checkpoint[k] for k in ("format", "epoch", "epochs_planned", "completed")} == {
        "format": "official-dino",
        "epoch": 49,
        "epochs_planned": 50,
        "completed": True,
    }
    assert checkpoint["optimizer_steps"] == 6888 * 50
    assert (checkpoint["grad_accum"], checkpoint["effective_batch"]) == (None, 1)
    assert checkpoint["unsafe_globals"] == []
    assert {k: resume[k] for k in ("start_epoch", "epochs_to_run", "trains", "first_epoch")} == {
        "start_epoch": 50,
        "epochs_to_run": 0,
        "trains": False,
        "first_epoch": None,
    }
    assert resume["strategy_compatible"] is True and resume["strategy_differences"] == []


def test_more_epochs_resume_is_fine(finished_official: Path) -> None:
    code, report = _json(str(finished_official), "--epochs", "60", "--num-classes", "4")
    assert (code, report["verdict"]) == (0, "ok")
    resume = report["resume"]
    assert (resume["first_epoch"], resume["last_epoch"], resume["epochs_to_run"]) == (50, 59, 10)
    assert resume["classes_compatible"] is True


def test_no_plan_reports_finished_and_exits_0(finished_official: Path) -> None:
    code, report = _json(str(finished_official))
    assert (code, report["verdict"], report["resume"]["plan_given"]) == (0, "finished", False)


def test_strategy_change(mid_epoch_tbx: Path) -> None:
    code, report = _json(str(mid_epoch_tbx), "--world-size", "2", "--grad-accum", "1")
    assert (code, report["resume"]["strategy_compatible"]) == (0, True)
    code, report = _json(str(mid_epoch_tbx), "--batch-size", "2")
    assert (code, report["verdict"]) == (1, "problem")
    assert report["resume"]["strategy_differences"] == [
        {"field": "batch_size", "checkpoint": 1, "planned": 2}
    ]


def test_class_count_change(unfinished_official: Path) -> None:
    code, report = _json(str(unfinished_official), "--num-classes", "3")
    assert (code, report["resume"]["classes_compatible"]) == (1, False)
    assert "use it as pretrained weights instead" in report["resume"]["classes_explanation"]


def test_text_and_markdown(finished_official: Path) -> None:
    code, text = _invoke(str(finished_official), "--epochs", "50")
    lines = text.splitlines()
    assert code == 1 and lines[-1] == "Verdict: problem"
    assert any(
        line.startswith("Resume (planned)") and "would train NOTHING" in line for line in lines
    )
    assert "finished 50 of 50 planned epochs" in text and "range(50, 50) is empty" in text
    code, markdown = _invoke(str(finished_official), "--format", "markdown")
    assert code == 0 and markdown.startswith(f"## Checkpoint `{finished_official}`")
    assert "| Progress | epoch 49 (0-based, last finished)" in markdown


@pytest.mark.parametrize(
    ("args", "message"),
    [(["missing.pth"], "no such file"), (["x.pth", "--format", "xml"], "xml")],
)
def test_unusable_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    code, output = _invoke(*[str(tmp_path / a) if a.endswith(".pth") else a for a in args])
    assert code == 2 and message in output


def test_no_torch_import(finished_official: Path) -> None:
    """tbx-doctor reads checkpoints without importing torch at all."""
    script = (
        "import sys; from pathlib import Path; from tbx_doctor.cli import app; "
        "from tbx_doctor.checkpoint import summarize_checkpoint, predict_resume; "
        f"s = summarize_checkpoint(Path({str(finished_official)!r})); predict_resume(s, 50); "
        "assert s.model_keys == 626; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True)
