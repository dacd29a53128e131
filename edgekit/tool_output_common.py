"""What the parsers of device-side tools' output share (edgekit.tool_output): the number
pattern the tools print, the marker line of recorded outputs, and edgekit's latency_ms keys.
Pure functions, no imports of frameworks.
"""

from __future__ import annotations

# a decimal number as the tools print it: 12, -3.5, .5, 2.95e+06
NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"  # unambiguous: no backtracking between two digit runs
# recorded outputs (tests/fixtures/tool-outputs) start with a "#source: ..." line naming their origin
SOURCE_MARKER = "#source:"
# The longest line a tool prints (benchmark_model's op-profile rows are < 300 characters). Longer
# lines are garbage (a binary blob in a log): the parsers skip them, since unanchored number
# patterns over one long digit run take quadratic time (found by fuzzing: minutes per line).
MAX_LINE = 4096


def tool_lines(text: str) -> list[str]:
    """TEXT's lines, without those over MAX_LINE characters."""
    return [line for line in text.splitlines() if len(line) <= MAX_LINE]


def to_int(text: str | None) -> int | None:
    """int(TEXT) for a count a tool printed, or None when TEXT is none or holds no whole number
    Python reads (a run of digits over its 4300-digit limit is garbage, not a count): the
    parsers skip what they cannot read instead of raising."""
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def latency_ms(min=None, p50=None, p90=None, p99=None, mean=None, std=None, max=None) -> dict:  # noqa: A002
    """edgekit's latency_ms dict (milliseconds; the keys of edgekit.profiling.LATENCY_KEYS, in
    that order), None for what a tool does not print."""
    return {"min": min, "p50": p50, "p90": p90, "p99": p99, "mean": mean, "std": std, "max": max}
