"""Which of the literal `NEEDLES` occur in a span of a line: the cheap gate before any pattern.

Python's regex engine tries every alternative at every byte, so one flat alternation of ~100
literals costs ~150 ns a byte. Two cheaper forms, by line length:
- short lines: one search with the literals folded into a trie (`(?:ab(?:c|d)|e...)`): at each
  byte only the branches that share its first byte are followed (2x faster than flat);
- long lines: `bytes.find` per literal, skipping those with a byte the line does not hold
  (most log text is lower-case letters, digits and spaces; a literal that needs a capital or
  punctuation the line lacks cannot occur in it): ~2x fewer passes over the line.
"""

from __future__ import annotations

import re
import string

from tbx_doctor.reading.patterns import NEEDLES

LONG_LINE = 512  # from this length on, literals are looked for one by one


def trie_pattern(words: list[bytes]) -> re.Pattern[bytes]:
    """A regex matching, at each position, the longest of `words` that starts there."""
    root: dict[int, dict] = {}
    for word in words:
        node = root
        for byte in word:
            node = node.setdefault(byte, {})
        node[-1] = {}  # a word ends here

    def emit(node: dict[int, dict]) -> bytes:
        branches = [re.escape(bytes([b])) + emit(child) for b, child in node.items() if b >= 0]
        if not branches:
            return b""
        body = b"(?:" + b"|".join(branches) + b")" if len(branches) > 1 else branches[0]
        # a shorter word ends here: the longer ones are tried first (greedy), then it
        return (b"(?:" + body + b")?") if -1 in node else body

    return re.compile(emit(root))


_UNIQUE = sorted({n for n, _, _ in NEEDLES})  # the trie makes the longest win: order is free
NEEDLE_SEARCH = trie_pattern(_UNIQUE)
# A literal hidden inside a longer one that matched at the same place is added back from here.
NEEDLES_INSIDE: dict[bytes, frozenset[bytes]] = {
    n: frozenset(m for m in _UNIQUE if m in n) for n in _UNIQUE
}
PLAIN_BYTES = (string.ascii_lowercase + string.digits + " ").encode()
PLAIN_NEEDLES = tuple(n for n in _UNIQUE if not n.translate(None, PLAIN_BYTES))
MARKED_NEEDLES = tuple(
    (n, frozenset(marks)) for n in _UNIQUE if (marks := n.translate(None, PLAIN_BYTES))
)


def needles_in(buf: bytes, pos: int, end: int) -> set[bytes]:
    """The literals of NEEDLES found in buf[pos:end]."""
    found: set[bytes] = set()
    if end - pos <= LONG_LINE:
        for hit in NEEDLE_SEARCH.finditer(buf, pos, end):
            found |= NEEDLES_INSIDE[hit.group()]
        return found
    find = buf.find
    marks = set(buf[pos:end].translate(None, PLAIN_BYTES))
    found.update(n for n in PLAIN_NEEDLES if find(n, pos, end) >= 0)
    found.update(n for n, need in MARKED_NEEDLES if need <= marks and find(n, pos, end) >= 0)
    return found
