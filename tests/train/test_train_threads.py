"""``training.threads``: one BLAS thread for a small network's products, every core for large ones."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import ann
from sweeps.config.compose import compose
from sweeps.config.run_spec import build_run_spec
from sweeps.training import fitting, threads
from sweeps.training.data import prepare_data
from sweeps.training.fitting import Recorder, step_product
from sweeps.training.threads import SMALL_PRODUCT, blas_threads, chosen_threads, largest_product


def _blas_threads() -> list[int]:
    """The threads of the BLAS libraries loaded when the process first trained (NumPy's; a
    library loaded later, e.g. by another test's import of PyTorch, is not the engine's)."""
    return [lib["num_threads"] for lib in threads._controller().select(user_api="blas").info()]


def test_largest_product_is_batch_times_the_widest_pair_of_layers():
    # widths 784-256-128-10: the largest product is 784 x 256 per row
    assert largest_product(784, [256, 128], 10, 64) == 64 * 784 * 256
    assert largest_product(2, [], 1, 8) == 8 * 2 * 1  # a perceptron
    assert largest_product(64, [1024, 1024], 10, 256) == 256 * 1024 * 1024


def test_auto_trains_small_products_on_one_thread_and_leaves_large_ones_alone():
    assert chosen_threads(None, SMALL_PRODUCT - 1) == 1
    assert chosen_threads(None, SMALL_PRODUCT) is None
    assert chosen_threads(3, 10) == 3  # a number is what it says, whatever the network
    assert chosen_threads(1, 10**12) == 1


def test_the_config_reads_auto_and_numbers():
    assert build_run_spec(compose([])).threads is None  # auto, the default
    assert build_run_spec(compose(["training.threads=2"])).threads == 2


@pytest.mark.skipif(not _blas_threads(), reason="no BLAS library found by threadpoolctl")
def test_blas_threads_limit_inside_the_block_and_restore_after():
    with threadpool_limits(limits=2, user_api="blas"):
        with blas_threads(1):
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {2}
        with blas_threads(None):
            assert set(_blas_threads()) == {2}


@pytest.mark.skipif(not _blas_threads(), reason="no BLAS library found by threadpoolctl")
def test_fit_trains_a_small_network_on_one_thread(monkeypatch):
    spec = build_run_spec(compose(["dataset=moons", "training.epochs=2", "training.batch_size=16",
                                   "model.hidden_layers=[8]", "tracking=off"]))
    data = prepare_data(spec)
    model = ann.MLP(**{**spec.model_kwargs, "task": data.task})
    assert step_product(model, data) == 16 * 2 * 8
    seen = []
    real_fit = ann.MLP.fit

    def spying_fit(self, *args, **kwargs):
        seen.append(_blas_threads())
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(ann.MLP, "fit", spying_fit)
    with threadpool_limits(limits=2, user_api="blas"):
        assert fitting.training_threads(model, data, None) == 1  # what a tracked run records
        fitting.fit(model, data, Recorder(lambda epoch, logs: None, 2), [])
        assert seen and set(seen[0]) == {1}
        assert set(_blas_threads()) == {2}  # restored
        fitting.fit(ann.MLP(**{**spec.model_kwargs, "task": data.task}), data,
                    Recorder(lambda epoch, logs: None, 2), [], threads=2)
        assert set(seen[1]) == {2} and fitting.training_threads(model, data, 2) == 2
    assert np.isfinite(model.evaluate(data.X_test, data.y_test)["loss"])
