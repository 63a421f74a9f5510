"""The tracking helper process (:mod:`sweeps.tracking.helper`): calls run in a real child
process, at a lower scheduling priority than the training beside it."""

from __future__ import annotations

import os
import sys
import time

import pytest

from sweeps.tracking.helper import IDLE_MODULES, NICENESS, WARM_MODULES, Helper


@pytest.fixture
def helper():
    process = Helper()
    yield process
    process.close()


def test_a_call_runs_in_another_process_and_returns_its_value(helper):
    assert helper.call(os.getpid) != os.getpid()
    assert helper.call(divmod, 7, 2) == (3, 1)


def test_an_exception_in_the_helper_is_raised_in_the_caller(helper):
    with pytest.raises(ZeroDivisionError):
        helper.call(divmod, 1, 0)
    assert helper.call(divmod, 9, 4) == (2, 1)  # the helper lives on


@pytest.mark.skipif(not hasattr(os, "nice"), reason="scheduling priorities are a Unix feature")
def test_the_helper_runs_second_to_the_training(helper):
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert helper.call(os.getpriority, os.PRIO_PROCESS, 0) == min(19, mine + NICENESS)


def test_close_ends_the_process(helper):
    helper.call(os.getpid)
    process = helper.process
    helper.close()
    assert process.poll() is not None and helper.process is None


def _loaded(names):
    return [name in sys.modules for name in names]


@pytest.mark.skipif(os.name == "nt", reason="select() on a pipe is POSIX only")
def test_the_sweep_end_modules_are_imported_while_no_call_waits(helper):
    # The run tails' modules are imported as the helper starts; the Optuna page's while it idles.
    assert all(helper.call(_loaded, WARM_MODULES))
    deadline = time.monotonic() + 120
    while not all(helper.call(_loaded, IDLE_MODULES)):
        assert time.monotonic() < deadline, "the idle helper never imported " + ", ".join(IDLE_MODULES)
        time.sleep(0.5)
