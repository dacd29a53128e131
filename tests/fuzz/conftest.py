"""Hypothesis profiles of the fuzz tests, and a summary of what the parsers did with the inputs.

Every property runs twice: `test_x` in the fast tier with the "default" profile (150 examples,
fewer for the HTML report) and `test_x_slow`, marked `slow`, with the "slow" profile and its own
example count (about 17,600 in all; see tests/fuzz/_fuzz.py `tiers`):

    pytest tests/fuzz -m "not slow"   # fast tier: ~2,700 parser calls, under a minute
    pytest tests/fuzz -m slow         # slow tier: ~20,000 parser calls, ~5 minutes on 2 cores

The summary at the end counts every parser call by outcome (ok, BadInput, known-bug). Runs are
derandomized (the same examples each time); `EDGEKIT_FUZZ_EXPLORE=1 pytest tests/fuzz -m slow`
explores new ones — a failure prints its reproduction blob; keep it as an explicit example.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(
    # The same examples on every run by default, so a merge is never refused by a case no change
    # introduced (Hypothesis' advice for CI); EDGEKIT_FUZZ_EXPLORE=1 draws new ones each run —
    # how the slow tier found the cases now kept as explicit examples.
    derandomize=os.environ.get("EDGEKIT_FUZZ_EXPLORE") != "1",
    deadline=None,  # the time bound is ours (tests/fuzz/_fuzz.py LIMIT_S), per example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.large_base_example],
    database=None,  # nothing written into the work tree; a failure prints its reproduction blob
    print_blob=True,
)
settings.register_profile("default", max_examples=150, **_COMMON)
settings.register_profile("slow", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_terminal_summary(terminalreporter):
    from tests.fuzz._fuzz import OUTCOMES

    if not OUTCOMES:
        return
    terminalreporter.write_sep("-", "fuzz: examples per parser and outcome")
    total = 0
    for parser in sorted(OUTCOMES):
        counts = OUTCOMES[parser]
        n = sum(counts.values())
        total += n
        kinds = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        terminalreporter.write_line(f"{parser}: {n} examples ({kinds})")
    terminalreporter.write_line(f"total: {total} examples, 0 uncaught exceptions unless a test failed above")
