"""What the fuzz tests share: the contract check, the two tiers of each property, and strategies
that damage real inputs the way copies, devices and editors do (truncation, bit flips, offsets
overwritten, lines shuffled, numbers replaced).

The contract of a parser of untrusted bytes: it returns, or raises an EdgekitError subclass with
a message (BadInput, exit 2, for bad bytes) — never TypeError/KeyError/IndexError/struct.error/
RecursionError/MemoryError, and never a hang. `outcome` checks that on one example and tallies
what happened (printed at the end of the run by tests/fuzz/conftest.py).
"""

from __future__ import annotations

import re
import signal
import time
from collections import Counter, defaultdict

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from edgekit.errors import EdgekitError
from tests.fuzz import conftest as _profiles  # noqa: F401  (registers the "default" and "slow" profiles)

LIMIT_S = 10.0  # an example takes milliseconds (an HTML report ~1 s); 10 s on 2 busy cores is a hang in the making
HANG_S = 20  # SIGALRM: stop a real hang (Python code) and fail with where it was
OUTCOMES: dict[str, Counter] = defaultdict(Counter)


class Hang(BaseException):
    """Raised by SIGALRM in a parser that runs too long (a BaseException: no `except Exception`
    in a parser turns it into a BadInput)."""


def _alarm(signum, frame):
    raise Hang(f"no result after {HANG_S} s")


def outcome(parser: str, fn, *args, known: tuple = (), **kwargs):
    """Run FN(*ARGS, **KWARGS) as one fuzz example of PARSER: ("ok", its value) or (the
    EdgekitError's class name, the error). Any other exception propagates (the test fails on
    it); an error without a message, or an example slower than LIMIT_S, fails the test too.
    KNOWN: (exception class, message substring) pairs of crashes already reported and not yet
    fixed (each has a strict xfail test of its own): tallied as "known-bug", not failed on."""
    start = time.perf_counter()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    try:
        value, kind = fn(*args, **kwargs), "ok"
    except EdgekitError as exc:
        value, kind = exc, type(exc).__name__
        assert exc.message and exc.message.strip(), f"{parser}: {kind} without a message"
    except Exception as exc:
        if not any(isinstance(exc, cls) and text in str(exc) for cls, text in known):
            raise
        value, kind = exc, f"known-bug {type(exc).__name__}: {str(exc)[:40]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    elapsed = time.perf_counter() - start
    assert elapsed < LIMIT_S, f"{parser} took {elapsed:.1f} s on one example"
    OUTCOMES[parser][kind] += 1
    event(f"{parser}: {kind}")
    return kind, value


def tiers(check, *, slow: int, case, examples=(), fast: int | None = None):
    """The two tests of one property: CHECK(case) for CASE drawn from the strategy CASE, plus the
    explicit EXAMPLES (regressions: inputs that once crashed a parser). The first test is the
    fast tier (the loaded profile's max_examples, or FAST); the second is marked `slow` and runs
    SLOW examples with the "slow" profile. Assign them to two test_* names in the module."""

    def build(profile: settings, n: int | None, suffix: str):
        def test(case):
            check(case)

        test.__name__ = test.__qualname__ = check.__name__.replace("check_", "test_") + suffix
        test.__doc__ = check.__doc__
        test.__module__ = check.__module__
        wrapped = given(case=case)(test)
        for ex in examples:
            wrapped = example(case=ex)(wrapped)
        return settings(profile, **({"max_examples": n} if n else {}))(wrapped)

    fast_test = build(settings.default, fast, "")
    slow_test = pytest.mark.slow(build(settings.get_profile("slow"), slow, "_slow"))
    return fast_test, slow_test


# ------------------------------------------------------------------ bytes: damaged files

U32 = [0, 1, 2, 3, 4, 7, 8, 12, 16, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
       0x80000000, 0xFFFFFFF0, 0xFFFFFFFC, 0xFFFFFFFE, 0xFFFFFFFF]
BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]


@st.composite
def mutated(draw, seed: bytes, max_ops: int = 4) -> bytes:
    """SEED damaged by 1..MAX_OPS of: cut short, bit flip, byte set, a 16/32/64-bit little-endian
    word overwritten (offsets and lengths: 0, -1, the file size, ...), a range deleted, zeroed,
    duplicated, or random bytes inserted."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_ops), label="ops")):
        n = len(data)
        op = draw(st.sampled_from(["truncate", "flip", "byte", "word", "delete", "zero", "dup", "insert"]))
        at = draw(st.integers(0, max(n - 1, 0)))
        if op == "truncate":
            del data[at:]
        elif op == "flip" and n:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and n:
            data[at] = draw(st.sampled_from(BYTES) | st.integers(0, 255))
        elif op == "word" and n:
            width = draw(st.sampled_from([2, 4, 4, 4, 8]))
            if draw(st.booleans()):
                at -= at % width  # flatbuffer offsets are aligned
            value = draw(st.sampled_from(U32 + [n, n - 4, n + 4, at, max(n - at, 0)]) | st.integers(0, 2 ** 32 - 1))
            data[at:at + width] = (value % 2 ** (8 * width)).to_bytes(width, "little")
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "zero":
            k = draw(st.integers(1, 64))
            data[at:at + k] = bytes(len(data[at:at + k]))
        elif op == "dup":
            data[at:at] = data[at:at + draw(st.integers(1, 256))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
    return bytes(data)


# ------------------------------------------------------------------ text: damaged tool output

NUMBERS = ["0", "-1", "1", "+3", ".5", "1e999", "-1e999", "1e-999", "9" * 30, "1" * 5000, "nan", "inf", "", "-",
           "1.2.3", "0x10", "١٢٣", "1,000", "1e", "--5", "3.4e+38", "2.95e+06"]
LOGCAT = ["I tflite  : ", "04-01 12:00:00.123  1234  1234 I tflite  : ", "I/tflite  ( 1234): ", "INFO: ",
          "VERBOSE: ", "ERROR: ", "I 00:00:00.091459 executorch:executor_runner.cpp:340] ", "E executorch:x.cpp:1] "]
_NUM = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@st.composite
def mutated_text(draw, seed: str, max_ops: int = 5) -> str:
    """SEED (a tool's output) damaged by 1..MAX_OPS of: lines shuffled, dropped, duplicated or
    swapped with another seed's; cut mid-line; numbers replaced (huge, infinite, empty, other
    scripts' digits); logcat/level prefixes added; garbage lines, CRLF or NUL bytes inserted."""
    lines = seed.splitlines()
    for _ in range(draw(st.integers(1, max_ops), label="ops")):
        n = len(lines)
        op = draw(st.sampled_from(["shuffle", "drop", "dup", "cut", "numbers", "numbers", "prefix", "garbage",
                                   "crlf", "nul", "keep"]))
        i = draw(st.integers(0, max(n - 1, 0)))
        if op == "shuffle" and n:
            lines = draw(st.permutations(lines))
        elif op == "drop" and n:
            del lines[i:i + draw(st.integers(1, 5))]
        elif op == "dup" and n:
            lines[i:i] = lines[i:i + draw(st.integers(1, 5))] * draw(st.integers(1, 3))
        elif op == "cut" and n:
            lines = lines[:i + 1]
            lines[-1] = lines[-1][:draw(st.integers(0, len(lines[-1])))]
        elif op == "numbers" and n:
            for j in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=6)):
                lines[j] = _NUM.sub(lambda m: draw(st.sampled_from(NUMBERS + [m.group(0)])), lines[j])
        elif op == "prefix" and n:
            lines[i] = draw(st.sampled_from(LOGCAT)) + lines[i]
        elif op == "garbage":
            lines.insert(i, draw(st.text(max_size=80)))
        elif op == "crlf":
            lines = [line + "\r" for line in lines]
        elif op == "nul" and n:
            lines[i] = lines[i][: len(lines[i]) // 2] + "\0" + lines[i][len(lines[i]) // 2:]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"]))
