"""The run's arguments as the log printed them: DINO's `args: Namespace(...)` and `Command:`
lines, tbx-train's `Run plan:` line, and (lowest priority) the output dir's config dump."""

from __future__ import annotations

from dataclasses import dataclass, field

from tbx_doctor.facts.job import Decision, Strategy
from tbx_doctor.reading import patterns as P
from tbx_doctor.reading.logscan import Line

NONE_VALUES = frozenset({"None", "", "''", '""', "-", "null"})


@dataclass
class Args:
    """key -> printed value (quotes stripped) and the line that printed it."""

    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, Line] = field(default_factory=dict)

    def set_default(self, key: str, value: str, line: Line | None) -> None:
        if key not in self.values:
            self.values[key] = value.strip().strip("'\"")
            if line is not None:
                # Quote only the argument: the Namespace line itself is ~6 KB.
                excerpt = f"... {key}={value.strip()} ..." if len(line.text) > 160 else line.text
                self.lines[key] = Line(line.file, line.line, excerpt)

    def get(self, key: str) -> str | None:
        value = self.values.get(key)
        return None if value is None or value in NONE_VALUES else value

    def get_int(self, key: str) -> int | None:
        value = self.get(key)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def flag(self, key: str) -> bool:
        return (self.get(key) or "").lower() in ("true", "1", "yes")


def _namespace(args: Args, line: Line) -> None:
    body = line.text.split("Namespace(", 1)[1]
    # Skip nested dicts such as options={'epochs': 50}: the attribute itself appears later.
    for key, value in P.NAMESPACE_ARG.findall(body):
        args.set_default(key, value, line)


def _command(args: Args, line: Line) -> None:
    text = line.text.split("Command:", 1)[1]
    head, _, options = text.partition("--options")
    for key, value in P.COMMAND_OPTION.findall(head):
        args.set_default(key, value or "True", line)
    for key, value in P.OPTIONS_PAIR.findall(options.split(" --", 1)[0]):
        args.set_default(key, value, line)


def args_from(
    signals: dict[str, tuple[Line, ...]], config: dict | None, config_line: Line | None
) -> Args:
    """Merge every source of arguments; earlier sources win (Run plan, Namespace, Command)."""
    args = Args()
    for line in signals.get("run_plan", ())[:1]:
        for key, value in P.PLAN_PAIR.findall(line.text.split("Run plan:", 1)[1]):
            args.set_default(key, value, line)
    for line in signals.get("namespace", ())[-1:]:
        _namespace(args, line)
    for line in signals.get("command", ())[:1]:
        _command(args, line)
    for key, value in (config or {}).items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            args.set_default(key, str(value), config_line)
    return args


def decisions_from_args(args: Args) -> list[Decision]:
    """Decisions implied by arguments (used when no explicit decision line was printed)."""
    found = []
    mode = args.get("mode")
    if mode in ("fresh", "pretrained", "resume") and "mode" in args.lines:
        found.append(
            Decision(mode, args.get("source"), args.lines["mode"], args.get_int("source_epoch"))
        )
    if args.get("resume") and "resume" in args.lines:
        found.append(Decision("resume", args.get("resume"), args.lines["resume"]))
    if args.get("pretrain_model_path") and "pretrain_model_path" in args.lines:
        found.append(
            Decision(
                "pretrained", args.get("pretrain_model_path"), args.lines["pretrain_model_path"]
            )
        )
    return found


def strategy_from(args: Args, signals: dict[str, tuple[Line, ...]]) -> Strategy | None:
    """Batch per device, accumulation and world size, from whichever lines state them."""
    banner = signals.get("effective_batch", ())
    match = P.EFFECTIVE_BATCH.search(banner[0].text) if banner else None
    batch = args.get_int("batch_size") or (int(match.group(2)) if match else None)
    accum = args.get_int("grad_accum") or args.get_int("gradient_accumulation_steps")
    accum = accum or (int(match.group(3)) if match else None)
    world = args.get_int("world_size")
    if batch is None and accum is None:
        return None
    keys = ("batch_size", "grad_accum", "gradient_accumulation_steps", "world_size")
    evidence = {args.lines[k] for k in keys if k in args.lines}
    if match:
        evidence.add(banner[0])
    ordered = tuple(sorted(evidence, key=lambda e: (e.file, e.line)))
    return Strategy(batch, accum or 1, world or 1, ordered)
