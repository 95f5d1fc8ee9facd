"""The learning findings through the commands: a running job is told to stop, `watch` raises
them live at the epoch that confirms them, `codes --explain` shows every default's source,
profiles and references are checked with one-line errors."""

from __future__ import annotations

import json
from dataclasses import fields

from learning_helpers import epoch_block, head, healthy_ap, healthy_loss, log_txt, noisy, run_log
from typer.testing import CliRunner

from tbx_doctor.cli import app
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.profile.learning_defaults import PROVENANCE, LearningThresholds
from tbx_doctor.watch.follower import Watcher, WatchOptions

COLLAPSE_AP = [0.02, 0.04, 0.06, 0.08, 0.10, 0.10, 0.10, 0.02, 0.01, 0.01, 0.01, 0.01]
LOSS = healthy_loss(12)


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*map(str, args)])
    return result.exit_code, result.output


def check_json(*args) -> dict:
    result = CliRunner().invoke(app, ["check", *map(str, args), "--format", "json"])
    return json.loads(result.stdout)


def test_check_on_a_running_job_says_to_stop_it(tmp_path):
    log = run_log(tmp_path / "train_5001.out", COLLAPSE_AP, LOSS, ending=False)
    report = check_json(log)
    collapsed = next(f for f in report["findings"] if f["code"] == "ap-collapsed")
    assert "The job is still running: this was visible from epoch 8" in collapsed["explanation"]
    assert collapsed["fix"].startswith("Cancel job 5001 now (scancel)")
    done = check_json(run_log(tmp_path / "train_5002.out", COLLAPSE_AP, LOSS))
    collapsed = next(f for f in done["findings"] if f["code"] == "ap-collapsed")
    assert "still running" not in collapsed["explanation"]


def test_a_run_folder_alone_is_judged_from_its_log_txt(tmp_path):
    folder = log_txt(tmp_path / "run_7", COLLAPSE_AP, LOSS)
    report = check_json(folder)
    collapsed = next(f for f in report["findings"] if f["code"] == "ap-collapsed")
    assert collapsed["evidence"][0]["file"] == str(folder / "log.txt")


def _watch_epochs(tmp_path, aps, losses) -> dict[str, int]:
    """Append one epoch at a time, poll once after each: code -> epoch when first raised."""
    log = tmp_path / "train_5003.out"
    log.write_text("\n".join(head(5003)) + "\n")
    events = []
    watcher = Watcher(log, WatchOptions(interval=0, settle=0), Profile(), events.append)
    raised: dict[str, int] = {}
    for epoch, (ap, loss) in enumerate(zip(aps, losses, strict=True)):
        with log.open("a") as handle:
            handle.write("\n".join(epoch_block(epoch, loss, ap)) + "\n")
        watcher.poll()
        for event in events:
            if event.kind == "finding":
                raised.setdefault(event.code, epoch)
    return raised


def test_watch_raises_the_collapse_at_the_epoch_that_confirms_it(tmp_path):
    raised = _watch_epochs(tmp_path, COLLAPSE_AP, LOSS)
    assert raised["ap-collapsed"] == 9  # below 0.35x best from epoch 8, two epochs: 9


def test_watch_stays_quiet_on_a_noisy_healthy_run(tmp_path):
    aps = noisy(healthy_ap(15), seed=3, spread=0.5, outlier=7)
    raised = _watch_epochs(tmp_path, aps, healthy_loss(15))
    learning = {"ap-collapsed", "not-learning", "loss-diverging", "resume-regression"}
    assert not learning & set(raised), raised


def test_codes_explain_lists_every_default_with_source_and_confidence():
    numeric = {
        f.name
        for f in fields(Profile)
        if f.name not in ("expect", "severity", "origin", "learning", "bands")
        and f.name != "iterations_per_epoch"  # no default: nothing to explain
    }
    assert set(PROVENANCE) == numeric | {f.name for f in fields(LearningThresholds)}
    code, text = invoke("codes", "--explain")
    assert code == 0
    assert "[first_epoch] loss = [1.5, 3.5]" in text and "[learning] collapse_ratio = 0.35" in text
    assert text.count("  from: ") == len(PROVENANCE) == text.count("  sure: ")
    code, out = invoke("codes", "--json", "--explain")
    defaults = {d["name"]: d for d in json.loads(out)["defaults"]}
    assert defaults["first_epoch_ap"]["value"] == [0.02, 0.10]
    assert defaults["ap_floor"]["confidence"].startswith("low-medium")


def test_profile_learning_table_changes_the_thresholds(tmp_path):
    log = run_log(tmp_path / "train_5004.out", COLLAPSE_AP, LOSS)
    profile = tmp_path / "p.toml"
    profile.write_text("[learning]\ncollapse_ratio = 0.05\n")
    report = check_json(log, "--profile", profile)
    assert "ap-collapsed" not in {f["code"] for f in report["findings"]}


def test_bad_learning_or_bands_table_is_one_line_exit_2(tmp_path):
    log = run_log(tmp_path / "train_5005.out", COLLAPSE_AP, LOSS)
    for text, message in (
        ("[learning]\ncollaps_ratio = 0.3\n", "[learning] takes numbers for: window"),
        ("[bands]\nepochs = [0]\n", "[bands] needs exactly the keys epochs"),
    ):
        (tmp_path / "p.toml").write_text(text)
        code, out = invoke("check", log, "--profile", tmp_path / "p.toml")
        assert code == 2 and message in out and len(out.strip().splitlines()) == 1


def test_bad_reference_is_one_line_exit_2(tmp_path):
    log = run_log(tmp_path / "train_5006.out", COLLAPSE_AP, LOSS)
    code, out = invoke("check", log, "--reference", tmp_path / "nope.out")
    assert code == 2 and "reference not found" in out
    (tmp_path / "plain.toml").write_text('expect = "any"\n')
    code, out = invoke("check", log, "--reference", tmp_path / "plain.toml")
    assert code == 2 and "has no [bands] table" in out and "profile learn" in out


def test_reference_run_log_bands_a_weaker_run(tmp_path):
    reference = run_log(tmp_path / "train_6001.out", healthy_ap(8), healthy_loss(8))
    weak = run_log(tmp_path / "train_6002.out", [a / 5 for a in healthy_ap(8)], healthy_loss(8))
    report = check_json(weak, "--reference", reference)
    off = next(f for f in report["findings"] if f["code"] == "off-reference")
    assert off["title"] == "Off the reference from epoch 0 (AP)"
    assert "outside at 8 of 8 epochs compared" in off["explanation"]
    same = check_json(reference, "--reference", reference)
    assert "off-reference" not in {f["code"] for f in same["findings"]}


def test_watch_takes_a_reference(tmp_path):
    reference = run_log(tmp_path / "train_6003.out", healthy_ap(8), healthy_loss(8))
    weak = run_log(tmp_path / "train_6004.out", [a / 5 for a in healthy_ap(8)], healthy_loss(8))
    code, out = invoke("watch", weak, "--reference", reference, "--interval", "0.01",
                       "--settle", "0", "--timeout", "5", "--format", "json")  # fmt: skip
    codes = [json.loads(line)["code"] for line in out.splitlines() if '"finding"' in line]
    assert "off-reference" in codes and code == 0
