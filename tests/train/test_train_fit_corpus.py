"""The fit diagnosis against a labelled corpus of real runs of known cause (``fit_corpus.py``).

Target: at least 95 % of the runs get a label their construction allows; every miss is
listed in the output (``pytest -rA`` shows it even when the test passes).
"""

from __future__ import annotations

import logging

import pytest

from fit_corpus import ACCEPTED, CASES, run_case

pytestmark = pytest.mark.slow

TARGET = 0.95


def test_the_corpus_covers_every_bundled_data_set_task_and_cause():
    datasets = {next(o for o in case.overrides if o.startswith("dataset=")).split("=")[1] for case in CASES}
    assert datasets == {"moons", "circles", "xor", "spiral", "digits", "breast_cancer", "diabetes", "regression"}
    assert {case.cause for case in CASES} == set(ACCEPTED)
    assert len(CASES) >= 40


def test_the_diagnosis_agrees_with_the_corpus(caplog):
    caplog.set_level(logging.WARNING)
    misses = []
    for case in CASES:
        result = run_case(case)
        if result["fit"] not in ACCEPTED[case.cause]:
            misses.append(f"{case.name}: built to be {case.cause}, labelled {result['fit']} ({result['fit_reason']})")
    agreement = 1 - len(misses) / len(CASES)
    print(f"\nfit corpus: {len(CASES) - len(misses)}/{len(CASES)} agree ({agreement:.1%})")
    for miss in misses:
        print("  miss:", miss)
    assert agreement >= TARGET, "\n".join(misses)
