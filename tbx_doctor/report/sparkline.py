"""Terminal sparklines of a chain's per-epoch series, one segment per job (`│` between jobs).

`sparkline([[1.5, 1.4], [1.2]]) -> "█▇│▁"`: values of all segments share one scale; a missing
value (None, NaN) is a space, so an epoch no file shows stays visible as a hole.
"""

from __future__ import annotations

import math

BARS = "▁▂▃▄▅▆▇█"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def sparkline(segments: list[list[float | None]], separator: str = "│") -> str:
    """Bars for each segment's values on a common min..max scale, segments separated."""
    values = [v for seg in segments for v in seg if _finite(v)]
    if not values:
        return separator.join(" " * len(seg) for seg in segments)
    low, high = min(values), max(values)
    span = high - low

    def bar(v: float | None) -> str:
        if not _finite(v):
            return " "
        level = 0 if span == 0 else round((v - low) / span * (len(BARS) - 1))
        return BARS[level]

    return separator.join("".join(bar(v) for v in seg) for seg in segments)


def scale_note(segments: list[list[float | None]], percent: bool = False) -> str:
    """`min..max` of the values, for the legend beside a sparkline."""
    values = [v for seg in segments for v in seg if _finite(v)]
    if not values:
        return "no values"
    if percent:
        return f"{min(values) * 100:.1f}%..{max(values) * 100:.1f}%"
    return f"{min(values):.3g}..{max(values):.3g}"
