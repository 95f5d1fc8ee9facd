"""Logs written by tbx-train (DESIGN 4.4 lines): decisions, run plan, refusal, SIGUSR1 requeue."""

from __future__ import annotations

from doctor_helpers import REPO, codes_of, run_check
from doctor_logtext import epoch_lines, write_log

PLAN = (
    "Run plan: mode=resume source=/o/checkpoint.pth source_epoch={se} start_epoch={st} "
    "epochs=50 epochs_to_run={n} batch_size=1 grad_accum=2 world_size=1 effective_batch=2"
)


def test_zero_epoch_plan_is_proved_from_the_jobs_own_lines(tmp_path):
    log = write_log(
        tmp_path,
        "tbx_5.out",
        [
            "Resuming from checkpoint: /o/checkpoint.pth (epoch 49)",
            PLAN.format(se=49, st=50, n=0),
            "Start training",
            "Training time 0:00:00",
        ],
    )
    rc, report = run_check(log)
    assert rc == 1 and "zero-epochs" in codes_of(report)
    text = report["findings"][0]["explanation"]
    assert "This job's own log shows that run finished epoch 49" in text
    assert "start_epoch = 49 + 1 = 50 = epochs" in text
    assert (report["run"]["source_epoch"], report["run"]["epochs_planned"]) == (49, 50)


def test_mid_epoch_resume_continues_the_named_epoch(tmp_path):
    lines = [
        "Resuming from checkpoint: /o/checkpoint.pth (epoch 3, iteration 120)",
        "Start training",
    ]
    lines += [*epoch_lines(3), "Training time 0:20:00"]
    rc, report = run_check(write_log(tmp_path, "tbx_6.out", lines))
    assert rc == 0 and report["run"]["source_epoch"] == 2 and report["run"]["first_epoch"] == 3


def test_plan_refused_is_a_config_error_with_its_own_fix(tmp_path):
    refusal = (
        "Run plan refused: checkpoint /o/checkpoint.pth finished epoch 49 of 50 and "
        "--epochs is 50: nothing to train. Fix: pass --epochs 60 or start fresh"
    )
    rc, report = run_check(write_log(tmp_path, "tbx_7.out", [refusal]))
    assert rc == 1
    finding = next(f for f in report["findings"] if f["code"] == "config-error")
    assert finding["fix"] == "pass --epochs 60 or start fresh"
    assert "zero-epochs" not in codes_of(report)


def test_incident_profile_makes_the_resume_unexpected(tmp_path):
    log = REPO / "fixtures/incident/train_tbx11k_39581627.out"
    rc, report = run_check(log, "--profile", REPO / "fixtures/profiles/incident.toml")
    assert rc == 1 and codes_of(report)["unexpected-resume"] == "error"
    path_item = report["checklist"][0]
    assert path_item == {
        "item": "The run's path is `pretrained`",
        "status": "fail",
        "evidence": f"resume at {log}:2",
    }
