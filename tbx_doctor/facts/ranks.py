"""Ranks, tasks and nodes of a multi-process job, and which of them failed first.

Only what the lines show: srun's `<node>: task N: <what>` and `Node failure on <node>`,
torchelastic's failure block (Root Cause first), `[rankN]:` tags on exceptions and the ranks'
start lines (`world size: W, world rank: R`). The first failure is the cause; what the other
ranks print after it (a lost peer, srun's teardown) is its consequence.
"""

from __future__ import annotations

from dataclasses import dataclass

from tbx_doctor.reading import patterns as P
from tbx_doctor.reading.logscan import Line

_TEARDOWN = ("Terminated", "Killed")  # what srun / torchrun do to the others after a failure


@dataclass(frozen=True)
class RankFailure:
    """One failure of a task or rank, with the line that shows it.

    ranks are torch's global ranks, tasks SLURM's task ids; under srun with one process per
    rank (tbx-train, DINO) they are the same numbers, and `tasks_are_ranks` says so.
    """

    line: Line
    what: str  # what the line says happened
    source: str  # "node-failure", "root-cause", "srun", "launcher", "exception"
    ranks: tuple[int, ...] = ()
    tasks: tuple[int, ...] = ()
    local_rank: int | None = None
    node: str | None = None
    support: tuple[Line, ...] = ()  # lines that tie the ranks to the node


@dataclass(frozen=True)
class RankFacts:
    """What the files show about the job's ranks; `first` is the failure that came first."""

    world_size: int | None
    world_line: Line | None
    tasks_are_ranks: bool  # srun started one process per rank: task N is rank N
    first: RankFailure | None
    node_failure: RankFailure | None  # srun's `Node failure on <node>`
    consequences: tuple[Line, ...] = ()  # other ranks' failures that came after it


def _task_ids(text: str) -> tuple[int, ...]:
    """srun's `tasks 0-3,6` -> (0, 1, 2, 3, 6)."""
    ids: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            ids.extend(range(int(low), int(high or low) + 1))
    return tuple(ids)


def srun_failures(signals: dict[str, tuple[Line, ...]]) -> list[RankFailure]:
    """srun's task lines, in file order (the order srun saw them)."""
    found = []
    for line in signals.get("task_failed", ()):
        match = P.SRUN_TASKS.search(line.text)
        if match:
            what = match.group(3).strip(" `")  # pasted lines keep their markdown quotes
            tasks = _task_ids(match.group(2))
            found.append(RankFailure(line, what, "srun", tasks=tasks, node=match.group(1)))
    return found


def _world(signals: dict, world_size: int | None) -> tuple[int | None, Line | None, set[int]]:
    """World size and the ranks whose start lines were printed."""
    size, first, seen = None, None, set()
    for line in signals.get("rank_init", ()):
        match = P.WORLD_RANK.search(line.text)
        if match:
            seen.add(int(match.group(2) or match.group(3)))
            if match.group(1) and size is None:
                size, first = int(match.group(1)), line
    return size or (world_size if world_size and world_size > 1 else None), first, seen


def _node_failure(
    signals: dict, srun: list[RankFailure], world: int | None, same: bool
) -> RankFailure | None:
    """srun's `Node failure on X`: the ranks on X are those srun places on no other node."""
    for line in signals.get("node_fail", ()):
        match = P.NODE_FAILURE_ON.search(line.text)
        if match is None:
            continue
        node = match.group(1)
        elsewhere = [f for f in srun if f.node != node]
        placed = {t for f in elsewhere for t in f.tasks}
        left = tuple(r for r in range(world or 0) if r not in placed)
        # proven only when srun named every task that ran elsewhere: then the rest ran on X
        ranks = left if same and placed and left and len(left) < (world or 0) else ()
        support = tuple(f.line for f in elsewhere)
        return RankFailure(line, "node failure", "node-failure", ranks, ranks, None, node, support)
    return None


def _root_cause(signals: dict) -> RankFailure | None:
    """torchelastic's block after `Root Cause (first observed failure):` (or the first
    failure it lists): rank, local rank, host, exit code."""
    roots = signals.get("root_cause", ())
    ranks = signals.get("elastic_rank", ())
    after = [r for r in ranks if roots and (r.file, r.line) > (roots[0].file, roots[0].line)]
    line = (after or list(ranks) or [None])[0]
    if line is None or not roots:
        return None
    match = P.ELASTIC_RANK.search(line.text)
    if match is None:
        return None
    host = next(
        (
            found.group(1)
            for h in signals.get("elastic_host", ())
            if h.file == line.file and line.line - 3 <= h.line < line.line
            and (found := P.ELASTIC_HOST.search(h.text))
        ),
        None,
    )  # fmt: skip
    rank, local = int(match.group(1)), int(match.group(2))
    return RankFailure(line, "first observed failure", "root-cause", (rank,), (), local, host)


def _launcher(signals: dict) -> RankFailure | None:
    """torchrun's `failed (exitcode: 1) local_rank: 3 (pid: N)`: the first worker it saw fail."""
    # exit -9 lines are read as kills first: they are the launcher's lines all the same
    for line in (*signals.get("elastic_exit", ()), *signals.get("killed", ())):
        match = P.ELASTIC_LOCAL.search(line.text)
        if match and match.group(1) != "0":
            what = f"exit code {match.group(1)}"
            return RankFailure(line, what, "launcher", local_rank=int(match.group(2)))
    return None


def _tagged_exception(signals: dict) -> RankFailure | None:
    """The first `[rankN]:` exception that is not a lost peer or a teardown signal."""
    for line in signals.get("exception", ()):
        match = P.RANK_TAG.search(line.text)
        if match and not P.PEER_LOST.search(line.text):
            what = line.text[match.end() :].strip()
            return RankFailure(line, what, "exception", (int(match.group(1)),))
    return None


def _first_srun(srun: list[RankFailure], same: bool) -> RankFailure | None:
    """srun's first task failure that is not its teardown of the others."""
    ordered = sorted(srun, key=lambda f: f.what.endswith(_TEARDOWN))
    if not ordered:
        return None
    first = ordered[0]
    return RankFailure(first.line, first.what, "srun", first.tasks if same else (), first.tasks,
                       node=first.node)  # fmt: skip


def _consequences(signals: dict, first: RankFailure, srun: list[RankFailure]) -> tuple[Line, ...]:
    """Other ranks' failures after the first: lost peers, srun's lines for other nodes' tasks."""
    lost = [e for e in signals.get("exception", ()) if P.PEER_LOST.search(e.text)]
    others = [f.line for f in srun if f.line != first.line and f.node != first.node]
    if first.source != "node-failure":
        others = [f.line for f in srun if f.line != first.line and f.what.endswith(_TEARDOWN)]
    return tuple(sorted({*lost, *others}, key=lambda x: (x.file, x.line)))


def rank_facts(signals: dict[str, tuple[Line, ...]], world_size: int | None) -> RankFacts | None:
    """The job's rank facts; None when nothing in the files tells ranks, tasks or nodes apart."""
    srun = srun_failures(signals)
    world, world_line, seen = _world(signals, world_size)
    elastic = bool(signals.get("elastic_exit") or signals.get("root_cause"))
    same = bool(seen) and not elastic  # the ranks started under srun themselves
    node = _node_failure(signals, srun, world, same)
    first = (
        node
        or _root_cause(signals)
        or _tagged_exception(signals)
        or _first_srun(srun, same)
        or _launcher(signals)
    )
    if first is None and not seen:
        return None
    consequences = _consequences(signals, first, srun) if first else ()
    return RankFacts(world, world_line, same, first, node, consequences)
