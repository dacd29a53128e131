"""One way to write sizes and durations, for every renderer (terminal, Markdown, HTML, docs).

Sizes are SI: 1 kB = 1000 bytes, 1 MB = 10^6 bytes, as the `size_mb` budget is defined. A
quantity measured in MiB (peak RSS: the kernel counts KiB) is converted to bytes first, so that
"MB" means the same thing on every line. Durations are shown with 3 significant digits in the
largest unit that keeps them at least 1 (s, ms, µs): a 2 µs inference is "2.02 µs", never
"0.00 ms". Missing values are "—".
"""

from __future__ import annotations

import math

MISSING = "—"
_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB")


def sig(x: float | int | None, digits: int = 3) -> str:
    """X with DIGITS significant digits in fixed notation (no exponent): 0.0020234 → "0.00202",
    152.46 → "152", 1234.4 → "1234" (the integer part is never rounded away), None → "—"."""
    if x is None:
        return MISSING
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    r = float(f"{x:.{digits - 1}e}")  # round first: 0.99999 → 1.00, not "1.000"
    mag = math.floor(math.log10(abs(r)))
    if mag >= digits - 1:  # no digits after the point: keep the integer part whole (1234, not 1230)
        return f"{x:.0f}"
    x = r
    decimals = max(0, digits - 1 - mag)
    return f"{x:.{decimals}f}"


def _scaled(x: float, steps: list[tuple[float, str]], digits: int) -> str:
    """X (in the base unit) in the first (factor, unit) of STEPS, largest first, where it is at
    least 1 after rounding to DIGITS significant digits; the last step takes what is left."""
    for i, (factor, unit) in enumerate(steps):
        v = x / factor
        text = sig(v, digits)
        if abs(float(text)) >= 1 or i == len(steps) - 1:
            return f"{text} {unit}"
    raise AssertionError("unreachable")


def format_bytes(n: int | float | None, digits: int = 3) -> str:
    """N bytes in SI units (B, kB = 10^3, MB = 10^6, GB = 10^9): 45032 → "45.0 kB",
    154500 → "155 kB", 1234567 → "1.23 MB", 12 → "12 B", None → "—"."""
    if n is None:
        return MISSING
    if not isinstance(n, (int, float)) or isinstance(n, bool) or not math.isfinite(n):
        return str(n)
    if abs(n) < 1000:
        return f"{n:.0f} B"
    return _scaled(n, [(10.0 ** (3 * i), u) for i, u in enumerate(_SIZE_UNITS)][:0:-1], digits)


def format_mb(mb: float | None, digits: int = 3) -> str:
    """A size already in MB (10^6 bytes, as the size_mb budget), written as format_bytes does."""
    return MISSING if mb is None else format_bytes(mb * 1e6, digits)


def format_mib(mib: float | None, digits: int = 3) -> str:
    """A quantity measured in MiB (2^20 bytes: peak RSS) converted to SI units: 47.34 → "49.6 MB"."""
    return MISSING if mib is None else format_bytes(mib * 1024 * 1024, digits)


def format_ms(ms: float | None, digits: int = 3) -> str:
    """A duration given in milliseconds with DIGITS significant digits in s, ms or µs:
    0.000123 → "0.123 µs", 0.002023 → "2.02 µs", 0.16 → "160 µs", 12.345 → "12.3 ms",
    2500 → "2.50 s", 0 → "0 ms", None → "—". Never "0.00 ms" for a measured time."""
    if ms is None:
        return MISSING
    if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not math.isfinite(ms):
        return str(ms)
    if ms == 0:
        return "0 ms"
    return _scaled(ms, [(1000.0, "s"), (1.0, "ms"), (1e-3, "µs")], digits)


def format_share(fraction: float | None) -> str:
    """A fraction 0..1 as a percentage with one decimal ("83.9%"); "<0.1%" for a positive share
    that would round to 0.0%, None → "—"."""
    if fraction is None:
        return MISSING
    if 0 < fraction < 0.0005:
        return "<0.1%"
    return f"{100 * fraction:.1f}%"


def format_value(v, unit: str = "", digits: int = 3) -> str:
    """A budget's or a metric's value in UNIT as the reports show it: "MB" through format_mb,
    "ms" through format_ms, anything else with DIGITS significant digits and the unit after it
    ("31.2 dB", "0.98"); None → "—"."""
    if v is None:
        return MISSING
    if unit == "MB":
        return format_mb(v, digits)
    if unit == "ms":
        return format_ms(v, digits)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return f"{v} {unit}".strip()
    text = str(v) if isinstance(v, int) else sig(v, digits) if abs(v) < 10 ** digits else f"{v:.0f}"
    return f"{text} {unit}".strip()


def format_limit(v, unit: str = "") -> str:
    """A budget's limit as the user wrote it (0.98, 25 dB), sizes and durations as format_value."""
    if unit in ("MB", "ms") or isinstance(v, bool) or not isinstance(v, (int, float)):
        return format_value(v, unit)
    return f"{v:g} {unit}".strip()
