"""The DINO log-line format (DESIGN 4.4) and the log.txt key layout."""

import json
import re

from tbx_train.logs import (
    MetricLogger,
    ProgressBar,
    SmoothedValue,
    append_epoch_record,
    epoch_record,
    format_duration,
)

# The official line, field by field: two-space separated, counter padded to the width of N.
ITERATION = re.compile(
    r"^Epoch: \[(?P<epoch>\d+)\]  \[(?P<i> *\d+)/(?P<n>\d+)\]  eta: (?P<eta>\S+)  "
    r"lr: (?P<lr>\d\.\d{6})  class_error: (?P<ce>\d+\.\d{2})  "
    r"loss: (?P<median>\d+\.\d{4}) \((?P<mean>\d+\.\d{4})\)"
    r"(?P<terms>(?:  \w+: \d+\.\d{4} \(\d+\.\d{4}\))*)  time: \d+\.\d{4}  data: \d+\.\d{4}$"
)


def _lines(print_freq=10, total=25, **kwargs):
    lines: list[str] = []
    logger = MetricLogger(print_freq=print_freq, write=lines.append, **kwargs)
    logger.start("Epoch: [3]", total)
    for i in range(total):
        logger.mark_data()
        logger.update(lr=1e-4, class_error=100.0, loss=float(i), loss_ce=0.5, loss_bbox=0.25)
        logger.tick(i)
    logger.finish()
    lines.append(logger.averaged_line())
    return lines, logger


def test_iteration_lines_match_the_official_format():
    lines, _ = _lines()
    iteration = [line for line in lines if ITERATION.match(line)]
    assert [ITERATION.match(x)["i"] for x in iteration] == [" 0", "10", "20", "24"]
    first = ITERATION.match(iteration[0])
    assert (first["epoch"], first["n"], first["lr"], first["ce"]) == (
        "3",
        "25",
        "0.000100",
        "100.00",
    )
    assert first["terms"] == "  loss_ce: 0.5000 (0.5000)  loss_bbox: 0.2500 (0.2500)"
    last = ITERATION.match(iteration[-1])
    # median of the last 20 losses 5..24 is 14.5; the mean over all 25 is 12.
    assert (last["median"], last["mean"]) == ("14.5000", "12.0000")


def test_epoch_end_lines():
    lines, _ = _lines()
    assert re.fullmatch(r"Epoch: \[3\] Total time: 0:00:00 \(\d\.\d{4} s / it\)", lines[-2])
    assert lines[-1].startswith("Averaged stats: lr: 0.000100  class_error: 100.00  loss: ")
    assert "max mem" not in "\n".join(lines)  # CPU: no memory field


def test_steps_of_several_micro_batches_print_the_multiple_they_cover():
    lines: list[str] = []
    logger = MetricLogger(print_freq=10, write=lines.append)
    logger.start("Epoch: [0]", 24)
    for last in range(1, 24, 2):  # grad_accum 2: micro-batches (0,1), (2,3), ...
        logger.update(loss=1.0)
        logger.tick(last, iterations=2)
    counters = [re.search(r"\[ *(\d+)/24\]", line)[1] for line in lines]
    assert counters == ["0", "10", "20", "23"]


def test_test_lines_have_no_lr():
    lines: list[str] = []
    logger = MetricLogger(print_freq=10, write=lines.append, with_lr=False)
    logger.start("Test:", 3)
    for i in range(3):
        logger.update(class_error=0.0, loss=2.0)
        logger.tick(i)
    logger.finish()
    assert lines[0].startswith("Test:  [0/3]  eta: ")
    assert "  class_error: 0.00  loss: 2.0000 (2.0000)  time: " in lines[0]
    assert re.fullmatch(r"Test: Total time: 0:00:00 \(\d\.\d{4} s / it\)", lines[-1])


def test_durations_print_like_dino():
    assert format_duration(0) == "0:00:00"
    assert format_duration(3600 * 30 + 65.9) == "1 day, 6:01:05"
    assert format_duration(2 * 86400 + 6 * 3600 + 18 * 60 + 48) == "2 days, 6:18:48"


def test_smoothed_value_window_and_global_mean():
    meter = SmoothedValue(window=3)
    for value in (1, 2, 3, 10):
        meter.update(value)
    assert (meter.median, meter.value, meter.global_avg) == (3, 10, 4)


def test_log_txt_has_the_official_keys(tmp_path):
    _, logger = _lines()
    coco = [0.5, 0.8] + [0.1] * 10
    record = epoch_record(logger.global_averages(), {"loss": 2.0}, coco, 3, 1234, 75.0)
    path = append_epoch_record(tmp_path, record)
    append_epoch_record(tmp_path, record)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 2
    row = rows[0]
    assert list(row)[:5] == [
        "train_lr",
        "train_class_error",
        "train_loss",
        "train_loss_ce",
        "train_loss_bbox",
    ]
    assert row["train_loss"] == 12.0 and row["test_loss"] == 2.0
    assert row["test_coco_eval_bbox"] == coco and len(row["test_coco_eval_bbox"]) == 12
    assert (row["epoch"], row["n_parameters"], row["epoch_time"]) == (3, 1234, "0:01:15")


def test_progress_bar_prints_the_same_lines(capsys):
    bar = ProgressBar()
    logger = MetricLogger(print_freq=2, progress=bar)
    logger.start("Epoch: [0]", 3)
    for i in range(3):
        logger.update(loss=1.0)
        logger.tick(i)
    logger.finish()
    out = capsys.readouterr().out.splitlines()
    assert [line.split("  eta:")[0] for line in out if "eta:" in line] == [
        "Epoch: [0]  [0/3]",
        "Epoch: [0]  [2/3]",
    ]
    assert out[-1].startswith("Epoch: [0] Total time: ")
