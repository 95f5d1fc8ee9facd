"""Sentences that name the first failing rank, task and node, and what its failure caused.

Shared by the crash and endings rules: with several ranks the first failure is the cause, and
what the other ranks print afterwards (a lost peer, srun's teardown) is its consequence.
"""

from __future__ import annotations

from tbx_doctor.facts.job import JobFacts
from tbx_doctor.facts.ranks import RankFailure
from tbx_doctor.reading import patterns as P
from tbx_doctor.reading.logscan import Line
from tbx_doctor.rules.describe import where


def _numbers(word: str, values: tuple[int, ...]) -> str:
    return f"{word}{'s' if len(values) > 1 else ''} {', '.join(map(str, values))}"


def _who(failure: RankFailure) -> str:
    """`rank 1`, `task 0`, `local rank 3`, with the node when known."""
    if failure.ranks:
        who = _numbers("rank", failure.ranks)
        if failure.tasks and failure.tasks == failure.ranks:
            who += f" ({_numbers('SLURM task', failure.tasks)})"
        elif failure.local_rank is not None:
            who += f" (local rank {failure.local_rank})"
    elif failure.tasks:
        who = _numbers("task", failure.tasks)
    else:
        who = f"local rank {failure.local_rank}"
    return who + (f" on {failure.node}" if failure.node else "")


def first_failure_text(facts: JobFacts, quoted: Line | None = None) -> str:
    """' The first failing rank is ... (quoted).' or '' when the files do not tell ranks apart;
    a line the finding already `quoted` is only pointed at."""
    ranks = facts.ranks
    first = ranks.first if ranks else None
    if first is None:
        return ""
    quote = where(first.line)
    if first.line != quoted:
        quote += f": `{first.line.text.strip()[:200]}`"
    if first.source == "node-failure":
        text = f" Node {first.node} failed first ({quote})"
        if first.ranks:
            placed = ", ".join(f"`{s.text.strip()}` ({where(s)})" for s in first.support[:3])
            text += (
                f"; {_numbers('rank', first.ranks)} ran there and died with it: srun places "
                f"every other task of the world of {ranks.world_size} elsewhere ({placed}), "
                f"so the first failing rank is {_numbers('rank', first.ranks)}"
            )
        else:
            text += "; which ranks ran on it these files do not show"
        return text + "."
    if first.source == "root-cause":
        return (
            f" torchelastic's Root Cause block names {_who(first)} as the first failure ({quote})."
        )
    if first.source == "launcher":
        return f" torchrun saw {_who(first)} fail first, with {first.what} ({quote})."
    if first.source == "srun":
        text = f" The first failing task is {_who(first)}: {first.what} ({quote})"
        if ranks.tasks_are_ranks and first.tasks and ranks.world_line:
            text += f"; srun started one process per rank ({where(ranks.world_line)})"
        return text + "."
    return f" The first failing rank is {_who(first)} ({quote})."


def consequence_text(facts: JobFacts, skip: tuple[Line, ...] = ()) -> str:
    """' What the other ranks printed after it follows from it: ...' (up to two lines)."""
    lines = [c for c in (facts.ranks.consequences if facts.ranks else ()) if c not in skip]
    if not lines:
        return ""
    quoted = "; ".join(f"{where(c)}: `{c.text.strip()[:160]}`" for c in lines[:2])
    more = f" and {len(lines) - 2} more" if len(lines) > 2 else ""
    return (
        f" What the other ranks printed after it is its consequence, not a cause: {quoted}{more}."
    )


def node_failed(facts: JobFacts) -> bool:
    """srun named a failed node: the ranks elsewhere only lost their peers."""
    return facts.ranks is not None and facts.ranks.node_failure is not None


def peer_lost(line: Line | None) -> bool:
    """The line is a rank losing its peer (reset connection, NCCL abort, teardown signal)."""
    return line is not None and P.PEER_LOST.search(line.text) is not None
