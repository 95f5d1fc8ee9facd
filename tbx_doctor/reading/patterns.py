"""Compiled byte patterns for the lines a training job prints (compiled once, at import).

Three sources of lines: the official DINO / DETR code base (iteration lines, `Averaged stats`,
pycocotools tables, `Training time`), `tbx-train`'s decision lines (DESIGN 4.4), wrapper banners
like the real TBX11K scripts', and SLURM / PyTorch / NCCL failure messages in all the wordings
seen in the wild. Iteration and `Test:` lines are dispatched by prefix before any regex runs;
`LINE_START` is matched and the `NEEDLES` searched only on the remaining (rare) lines.
"""

from __future__ import annotations

import re

ITERATION_PREFIX = b"Epoch: ["
TEST_PREFIX = b"Test:  ["
ITERATION = re.compile(rb"Epoch: \[(\d+)(?:/\d+)?\]\s+\[\s*(\d+)/(\d+)\]")
EPOCH_TOTAL = re.compile(rb"Epoch: \[(\d+)(?:/\d+)?\] Total time: (\S+)")
RUNNING_LOSS = re.compile(rb"  loss: (\S+) \((\S+)\)")
NONFINITE_FIELD = re.compile(rb": \(?-?(?:nan|inf|NaN|Inf)\b|\(-?(?:nan|inf)\)")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

_RANK = rb"(?:\[(?:rank|default)\d+\]:\s*)?"

# Kinds found anywhere in a line: a cheap literal `needle` (bytes.find) gates each regex, because
# one big alternation searched over every byte is ~100x slower in Python's regex engine.
_ANYWHERE: list[tuple[str, tuple[bytes, ...], bytes]] = [
    # slurmstepd: "*** JOB 7 ON n1 CANCELLED AT <t> DUE TO TIME LIMIT ***"; also "STEP 7.0",
    # older releases without "ON <node>", and scancel's form without a reason.
    ("slurm_cancel", (b"*** ",), rb"\*\*\* (?:JOB|STEP) \S+ (?:ON \S+ )?CANCELLED AT \S+"),
    (
        "script_failed",  # the batch script itself could not be started
        (b"execve(): ",),
        rb"execve\(\): \S+: (?:No such file or directory|Permission denied|Exec format error)",
    ),
    ("time_limit", (b"TIMEOUT", b"time limit"), rb"TIMEOUT.*JobId=|exceeded (?:its )?time limit"),
    ("preempted", (b"PREEMPT", b"requeued"), rb"PREEMPTED|[Jj]ob \d+ (?:was )?requeued"),
    ("node_fail", (b"NODE_FAIL", b"ode failure"), rb"NODE_FAIL|[Nn]ode failure"),
    (
        "host_oom",
        (
            b"oom-kill",
            b"oom_kill",
            b"emory limit",
            b"Out of memory: Kill",
            b"Out Of Memory",
            b"killed by signal: Killed",
            b"us error",
            b"shared memory",
        ),
        rb"oom[-_]kill event|[Ee]xceeded (?:job|step) memory limit|exceeded memory limit \("
        rb"|Out of memory: Kill|task \d+: Out Of Memory"
        # host memory seen from the data loader: a worker killed by the kernel, or /dev/shm full
        rb"|DataLoader worker \(pid \d+\) is killed by signal: Killed"
        rb"|[Bb]us error.{0,80}(?:shared memory|shm)|insufficient shared memory",
    ),
    (
        "killed",
        (b"SIGKILL", b"exitcode", b" Killed "),
        rb"[Ss]ignal 9 \(SIGKILL\)|exitcode\s*:\s*-9\b|\d Killed +\S",
    ),
    (
        "elastic_exit",  # torchelastic's failure block: "exitcode  : 1 (pid: 15724)" per rank
        (b"exitcode",),
        rb"exitcode\s*:\s*-?\d+ \(pid|\(exitcode: -?\d+\) local_rank: \d+",
    ),
    ("elastic_rank", (b"(local_rank",), rb"rank\s*:\s*\d+ \(local_rank"),
    ("elastic_host", (b"host      : ",), rb"(?m:^)\s*host      : \S+"),  # its failure block's host
    (
        "task_failed",
        (b"srun: error:",),
        rb"srun: error: \S+: tasks? [\d,\-]+: \w",
    ),
    (
        "native_crash",  # a signal in compiled code: glog's stack trace, the shell, CPython
        (b"*** SIG", b"Segmentation fault", b"Fatal Python error"),
        rb"\*\*\* SIG(?:SEGV|ABRT|BUS|FPE|ILL) .{0,40}received by PID"
        rb"|Segmentation fault \(core dumped\)|Fatal Python error: Segmentation fault",
    ),
    (
        "cuda_oom",
        (b"out of memory", b"OutOfMemoryError", b"ALLOC_FAILED", b"MemoryAllocation"),
        rb"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory|CUBLAS_STATUS_ALLOC_FAILED"
        rb"|cudaErrorMemoryAllocation|HIP out of memory"
        rb"|error == cudaSuccess.{0,200}out of memory",  # Caffe2's enforce
    ),
    (
        "nccl_error",
        (b"NCCL", b"nccl", b"DistBackendError", b"Watchdog"),
        rb"NCCL [Ee]rror|NCCL WARN.*(?:[Tt]imeout|[Ee]rror|[Ff]ailed)"
        rb"|nccl(?:Internal|System|UnhandledCuda|InvalidUsage|Remote)Error"
        rb"|Watchdog caught collective|NCCL communicator was aborted"
        rb"|DistBackendError|ProcessGroupNCCL.*(?:[Tt]imed? ?out|aborted|[Ee]xception)",
    ),
    ("device_assert", (b"device-side assert",), rb"device-side assert"),
    (
        "class_assert",  # the CUDA kernel assertion that precedes a device-side assert
        (b"Assertion `", b"tgt_ids]", b"target_classes["),
        rb"Assertion `.*(?:n_classes|num_classes|index out of bounds|srcIndex <|input_val)"
        # the traceback frame that indexes class scores by the targets' labels (DETR matcher)
        rb"|\[:, tgt_ids\]|target_classes\[",
    ),
    (
        "box_assert",
        (b"assert (boxes1",),
        rb"assert \(boxes1\[:, 2:\] >= boxes1\[:, :2\]\)\.all\(\)",
    ),
    (
        "nonfinite",
        (b"Loss is", b"on-finite", b"not finite", b"NaN", b"NAN", b"nan", b"inf", b"Inf"),
        rb"Loss is -?(?:nan|NaN|inf|Inf)|[Nn]on-finite loss|loss is not finite"
        rb"|\b(?:is|are|became|contains?) (?:a )?(?:NaN|NAN|nan)\b"
        rb"|Loss became infinite or NaN"  # detectron2's FloatingPointError
        rb"|NaN detected|returned nan values|[Ll]oss\w* ?(?:is )?NaN\b"
        # mmdet "loss: nan", Lightning "loss=nan", plain loops "loss = inf", tensors printed
        rb"|[Ll]oss\w*\"?\s*[:=]\s*(?:tensor\(\[*)?-?(?:nan|inf|NaN|Inf|Infinity)\b",
    ),
    (
        "size_mismatch",
        (b"size mismatch", b"key(s) in state_dict"),
        rb"size mismatch for |Missing key\(s\) in state_dict|Unexpected key\(s\) in state_dict",
    ),
    (
        "config_error",
        (b"ConfigError", b": error: "),
        rb"ConfigError|: error: (?:unrecognized arguments|argument |the following arguments)",
    ),
    (
        "data_error",
        (
            b"COCO path",
            b"UnidentifiedImageError",
            b"No such file",
            b"FileNotFoundError",
            b"Corrupt JPEG",
            b"is truncated",
            b"KeyError: '",
            b"in DataLoader worker",
            b"FileNotFoundError: Traceback",
        ),
        rb"provided COCO path .* does not exist|UnidentifiedImageError"
        rb"|(?:FileNotFoundError|No such file or directory).*\.(?:png|jpe?g|json|bmp|tiff?|xml)\b"
        rb"|Corrupt JPEG|image file is truncated"
        # COCO-style annotations without a field the dataset code reads
        rb"|KeyError: '(?:area|bbox|category_id|iscrowd|image_id|annotations|segmentation"
        rb"|file_name|images|categories)'"
        # an exception raised while loading the data set, re-raised by the DataLoader
        rb"|Caught (?:FileNotFoundError|KeyError|OSError|IOError|UnidentifiedImageError) in "
        rb"DataLoader worker|FileNotFoundError: Traceback \(most recent",
    ),
    (
        "missing_op",  # a compiled extension not built for this environment
        (b"No module named", b"undefined symbol", b"MultiScaleDeformableAttention"),
        rb"No module named '?[\w.]*(?:MultiScaleDeformableAttention|_ext|_C)\b"
        rb"|\.so: undefined symbol|[Ee]rror.{0,80}MultiScaleDeformableAttention",
    ),
    (
        "missing_module",
        (b"No module named",),
        rb"ModuleNotFoundError: No module named '?[\w.]+",
    ),
    (
        "traceback",
        (b"Traceback (most recent call last)",),
        rb"Traceback \(most recent call last\):",
    ),
    (
        "fresh_claim",
        (b"FRESH", b"resh"),
        rb"[Ss]tart(?:ing)? [Ff]resh\b|FRESH training|[Ff]resh training",
    ),
    (
        "success",
        (b"successfully",),
        rb"(?:[Tt]raining|[Ee]valuation|[Jj]ob) (?:completed|finished) successfully",
    ),
    (
        "ap_line",
        (b"(AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ",),
        rb"Average Precision  \(AP\) @\[ IoU=0\.50:0\.95 \| area=   all \| maxDets=100 \] = ",
    ),
    ("command", (b"]: Command: ",), rb"\]: Command: "),
    ("namespace", (b"args: Namespace(",), rb"args: Namespace\("),
    # detectron2 / detrex: every line starts "[MM/DD HH:MM:SS logger]: ", often ANSI-coloured,
    # so these are searched, not matched at the line start.
    ("d2_iteration", (b" iter: ",), rb"\biter: \d+\s+\w*loss\w*: "),
    (
        "start_training",
        (b"Starting training from iteration ",),
        rb"Starting training from iteration \d+",
    ),
    (
        "training_time",
        (b"Total training time: ",),
        rb"Total training time: (?:\d+ days?, )?\d+:\d\d:\d\d",
    ),
    ("ckpt_loading", (b"[Checkpointer] Loading from ",), rb"\[Checkpointer\] Loading from \S"),
    (
        "scratch",
        (b"No checkpoint found",),
        rb"No checkpoint found\. Initializing model from scratch",
    ),
    (
        "resume",
        (b"Resuming from checkpoint: ", b"Resuming from previous job checkpoint: "),
        rb"Resuming from (?:previous job )?checkpoint: ",
    ),
    ("iteration", (b"Epoch: [",), rb"Epoch: \[\d+\]\s+\[\s*\d+/\d+\]"),
    ("test_line", (b"Test:  [", b"Test: ["), rb"Test: +\[\s*\d+/\d+\]"),
    # Iteration/epoch lines of other trainers, one specific needle per shape (a regex of all
    # shapes costs ~1 ms on a 4 KB line): mmdet, mmengine, Lightning, plain loops, ...
    (
        "progress",
        (b"poch",),
        rb"Epoch \[\d+\]\[\s*\d+/\d+\]|Epoch\(train\)\s*\[\d+\]\[\s*\d+/\d+\]"
        rb"|Epoch \d+:\s+\d+%\||[Ee]poch\W{0,3}\d+\W.{0,200}?\b[Ll]oss"
        rb"|<epoch:\s*\d+, iter:\s*[\d,]+",  # BasicSR / mmsr
    ),
    ("progress", (b"iter", b"Iter"), rb"\b[Ii]ter(?:ation)?\W{0,3}\d+\W.{0,300}?\b[Ll]oss"),
    ("progress", (b"] - ",), rb"\d+/\d+ \[[=>.]+\] - .{0,80}\bloss: "),  # Keras
    ("progress", (b"step ",), rb"\bstep \d+\W.{0,40}?\bloss\b"),  # TF "global step N: loss"
    ("progress", (b"]  eta: ",), rb"\[\s*\d+/\d+\]\s+eta: "),  # MetricLogger (DINOv2)
    (
        "progress",  # YOLOv5/v8 epoch rows: "  1/10  4.35G  1.394 ... 28/28 [00:17<00:00, 1.6it/s]"
        (b"it/s]", b"s/it]"),
        rb"(?m:^)\s*\d+/\d+\s+\d+(?:\.\d+)?G\s+\d.*(?:it/s|s/it)\]",
    ),
    ("progress", (b'"train_loss": ',), rb'"train_loss": -?\d'),  # DINO's log.txt given as a log
    (
        "trainer_start",  # what other trainers print first (mmdet, detectron2, Lightning, ...)
        (
            b"Environment info",
            b"sys.platform",
            b"Command line",
            b"Rank of current",
            b"GPU av",
            b"LOCAL_RANK:",
            b"Trainable params",
            b"Start",
        ),
        rb"Environment info:|sys\.platform:|Command line arguments:|Rank of current process:"
        rb"|GPU available:|LOCAL_RANK: \d|Trainable params|Start running|Start(?:ing)? [Tt]raining",
    ),
    (
        "run_end",  # how other trainers say the run finished normally
        (
            b"Trainer.fit` stopped",
            b"inished Training",
            b"inished training",
            b"raining finished",
            b"Done training",
            b"epochs completed in ",
        ),
        rb"`Trainer\.fit` stopped|[Ff]inished [Tt]raining|[Tt]raining finished|Done training"
        rb"|\d+ epochs completed in [\d.]+ hours",  # YOLOv5
    ),
    # a bare tqdm bar (no loss in it): some loop ran, not necessarily training
    ("tqdm_bar", (b"%|",), rb"\d%\|[^|\n]{0,80}\|\s*\d+/\d+ \["),
    ("root_cause", (b"Root Cause",), rb"Root Cause \(first observed failure\)"),
    (
        "job_id",
        (b"SLURM_JOB_ID=", b"Submitted batch job ", b"StepId="),
        rb"SLURM_JOB_ID=\d+|Submitted batch job \d+|StepId=\d+",
    ),
]
NEEDLES: tuple[tuple[bytes, str, re.Pattern[bytes]], ...] = tuple(
    (needle, kind, re.compile(pattern))
    for kind, needles, pattern in _ANYWHERE
    for needle in needles
)
PATTERN_NEEDLES: dict[re.Pattern[bytes], tuple[bytes, ...]] = {}
for _needle, _kind, _pattern in NEEDLES:
    PATTERN_NEEDLES[_pattern] = (*PATTERN_NEEDLES.get(_pattern, ()), _needle)
# Words that send a line of a known progress shape through the full search all the same.
ALARM_NEEDLES = (
    b"nan", b"NaN", b"NAN", b"inf", b"Inf", b"rror", b"***", b"xception", b"illed",
    b"Traceback", b"NCCL", b"of memory", b"OfMemory", b"oom", b"ssert", b"SIG", b"xit",
)  # fmt: skip
# Kinds recognised only at the start of a line (matched, never searched).
_LINE_START: list[tuple[str, bytes]] = [
    ("exception", _RANK + rb"(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Interrupt)\b(?::|$)"),
    ("plan_refused", rb"Run plan refused: "),
    ("run_plan", rb"Run plan: "),
    ("resume", rb"Resuming from (?:previous job )?checkpoint: "),
    ("resume_note", rb"Resuming from checkpoint - "),
    ("pretrained", rb"Using pretrained weights: "),
    ("scratch", rb"Training from scratch"),
    ("found_ckpt", rb"Found compatible [^\n]*checkpoint: "),
    ("sigusr1", rb"Interrupted by SIG\w+: saved checkpoint "),
    # scripts/tbx_job.sh: the signal it forwarded to tbx-train, and what it did after exit 75.
    ("job_signal", rb"\[tbx-job\] Received SIG\w+ "),
    (
        "job_chain",
        rb"\[tbx-job\] (?:Submitted job \d+ to continue|TBX_ON_STOP=|Stopped by SIG|Chain limit)",
    ),
    ("saved_ckpt", rb"Saved checkpoint: "),
    # each rank's start (tbx-train, DINO's util/misc.py): which ranks there were, and how many
    ("rank_init", rb"world size: \d+, (?:world )?rank: \d+|\| distributed init \(rank \d+\)"),
    ("killed", rb"Killed\s*$"),
    ("start_training", rb"Start training\s*$"),
    ("training_time", rb"Training time (?:\d+ days?, )?\d+:\d\d:\d\d"),
    ("eval_banner", rb"Starting Evaluation|DINO Evaluation on|Evaluation only\b"),
    ("effective_batch", rb"Effective Batch Size: "),
    ("job_id", rb"(?:Job ID|SLURM_JOB_ID|Job id)\s*[:=]\s*\d+"),
    ("node", rb"(?:Node|Nodelist|SLURM_JOB_NODELIST|Running on host)\s*[:=]\s*\S+"),
    ("start_time", rb"Start(?:ed)?(?: Time| time|ing at)\s*:\s*\S"),
    ("end_time", rb"End(?:ed)?(?: Time| time)\s*:\s*\S"),
    ("output_dir", rb"Output (?:Directory|dir)\s*:\s*\S"),
    ("project_root", rb"Project Root\s*:\s*\S"),
    ("logs_saved", rb"Logs saved to\s*:\s*\S"),
    ("command", rb"Command: "),
    ("namespace", rb"Namespace\("),
]


def _alternation(keys: list[tuple[str, bytes]]) -> re.Pattern[bytes]:
    names: dict[str, int] = {}
    parts = []
    for kind, pattern in keys:
        names[kind] = names.get(kind, 0) + 1
        group = kind if names[kind] == 1 else f"{kind}__{names[kind]}"
        parts.append(b"(?P<%s>%s)" % (group.encode(), pattern))
    return re.compile(b"|".join(parts), re.M)


LINE_START = _alternation(_LINE_START)
KINDS: tuple[str, ...] = tuple(
    dict.fromkeys([k for k, _ in _LINE_START] + [k for k, *_ in _ANYWHERE])
)
SLURM_REASON = re.compile(r"DUE (?:TO|to) ([A-Za-z][\w ,]*)")
ANYWHERE_WINDOW = 8192  # bytes of a long line searched for error messages (5 MB lines exist)

# Arguments as DINO's argparse Namespace repr and its `Command:` line print them.
NAMESPACE_ARG = re.compile(r"(?<![\w'])(\w+)=('(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^,()]+)")
COMMAND_OPTION = re.compile(r"--(\w+)(?:[ =]((?!--)\S+))?")
OPTIONS_PAIR = re.compile(r"\b(\w+)=(\S+)")
PLAN_PAIR = re.compile(r"(\w+)=(\"[^\"]*\"|'[^']*'|\S+)")
D2_ITER_NEEDLE = b" iter: "
D2_ITER_HEAD = 200  # bytes of a line that hold detectron2's "[time logger]:  eta: ...  iter: N"
D2_ITERATION = re.compile(rb"\biter: \d+\s+\w*loss\w*: ")
D2_ITER = re.compile(rb"\biter: (\d+)")
D2_TOTAL_LOSS = re.compile(rb"\btotal_loss: (\S+)")
D2_START = re.compile(r"Starting training from iteration (\d+)")
D2_LOADING = re.compile(r"\[Checkpointer\] Loading from (\S+)")
INTERRUPTED = re.compile(
    r"Interrupted by (SIG\w+): saved checkpoint (.+?) \(epoch (-?\d+)(?:, iteration (\d+))?\)"
)
TASK_EXIT_CODE = re.compile(r"Exited with exit code (\d+)")
JOB_SIGNAL = re.compile(r"Received (SIG\w+)(?: at (.+?): forwarding)?")
CKPT_EPOCH = re.compile(r"\(epoch (-?\d+)(?:, iteration (\d+))?\)")
EFFECTIVE_BATCH = re.compile(r"Effective Batch Size: (\d+) \((\d+) per GPU × (\d+) accumulation")
DURATION = re.compile(r"(?:(\d+) days?, )?(\d+):(\d\d):(\d\d)")
CANCELLED_AT = re.compile(r"CANCELLED AT (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")
JOB_ID_IN_NAME = re.compile(r"(?<!\d)(\d{4,})(?!\d)")
# The total loss a progress line prints: `loss: 0.85` (mmdet, Keras), `loss=0.41` (Lightning),
# `loss = 0.14` (TensorFlow); `loss_cls` and friends are terms, not the total.
LOSS_VALUE = re.compile(rb"\b[Ll]oss\"?\s*[:=]\s*(-?\d+\.?\d*(?:[eE][+-]?\d+)?)\b")
# "2020-05-08 18:33:04,627", "2025-11-16T21:36:29", glog's "I20240724 09:37:05"
LINE_STAMP = re.compile(r"(?<!\d)(20\d\d)-?(\d\d)-?(\d\d)[ T](\d\d):(\d\d):(\d\d)(?!\d)")
PRINTED_JOB_ID = re.compile(
    r"(?:Job ID|SLURM_JOB_ID|Job id|Submitted batch job)\s*[:=]?\s*(\d+(?:_\d+)?)"
)
# Ranks, tasks and nodes (facts/ranks.py): "[rank3]: ..." (torch >= 2.2, also after a pid tag),
# "[default0]:" (torchrun --tee), srun's task and node-failure lines, the ranks' init lines.
RANK_TAG = re.compile(r"^.{0,24}?\[(?:rank|default)(\d+)\]:")
SRUN_TASKS = re.compile(r"srun: error: (\S+): tasks? ([\d,\-]+): (.+)")
NODE_FAILURE_ON = re.compile(r"[Nn]ode failure on (\S+)")
WORLD_RANK = re.compile(
    r"world size: (\d+), (?:world )?rank: (\d+)|distributed init \(rank (\d+)\)"
)
ELASTIC_RANK = re.compile(r"rank\s*:\s*(\d+) \(local_rank:\s*(\d+)\)")
ELASTIC_LOCAL = re.compile(r"\(exitcode: (-?\d+)\) local_rank: (\d+)")
ELASTIC_HOST = re.compile(r"host\s+: (\S+)")
# What a rank prints when another rank (or its node) vanished: consequences, never the cause.
PEER_LOST = re.compile(
    r"[Cc]onnection (?:reset|closed) by peer|Broken pipe|gloo.{0,80}(?:Read|Write) error"
    r"|Watchdog caught collective|NCCL communicator was aborted|DistBackendError"
    r"|ncclRemoteError|recvValue failed|[Ss]ocket [Tt]imeout|SignalException"
)
SLURM_LINE_JOB_ID = re.compile(r"(?:\*\*\* (?:JOB|STEP) |StepId=|JobId=|\bin step )(\d+)")


def slurm_cancel_kind(text: str) -> str:
    """Kind of a `*** JOB n ON node CANCELLED AT t [DUE TO reason] ***` line, from its reason."""
    match = SLURM_REASON.search(text)
    reason = match.group(1).upper() if match else ""
    if "TIME LIMIT" in reason:
        return "time_limit"
    if "PREEMPT" in reason or "REQUEUE" in reason:
        return "preempted"
    if "NODE FAIL" in reason:
        return "node_fail"
    return "cancelled"
