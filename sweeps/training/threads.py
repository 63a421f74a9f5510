"""How many BLAS threads a network trains with (``training.threads``).

NumPy's BLAS (OpenBLAS) splits every matrix product over every core, down to products of a
few hundred thousand multiply-adds. A training step of a small network is a string of such
products with Python in between, and a second BLAS thread then costs more than it saves: it
waits (spinning, so a whole core looks busy) for work that is too small to share, and it
takes the core the tracking helper and the other workers would use. Measured on a 2-core
AMD EPYC (docs/benchmarks.md, "BLAS threads"): one epoch of 784-256-128-10 at batch 64
(largest product 64 x 784 x 256 = 12.8 M multiply-adds) took 1.35x longer on 2 threads
than on 1; at batch 256 (51 M) 2 threads were 1.12x faster, and 784-1024-1024-10 at batch
128 (134 M) 1.48x faster.

``training.threads: auto`` (the default) therefore trains with one BLAS thread when the
largest product of a training step, ``batch_size x fan_in x fan_out`` over the layers, is
below :data:`SMALL_PRODUCT`, and leaves the threads as they are (every core, or a worker's
share of them) otherwise; a number sets them. The choice depends only on the network and
the batch size, never on the machine's load, so a seeded run gives the same values every
time (OpenBLAS's results may differ in the last bits between 1 and 2 threads).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator, Sequence

from threadpoolctl import ThreadpoolController

#: Below this many multiply-adds in a training step's largest matrix product, ``auto`` trains
#: on one BLAS thread: between the 12.8 M where 2 threads were 1.35x slower and the 51 M where
#: they were 1.12x faster (module docstring).
SMALL_PRODUCT = 25_000_000


def largest_product(n_features: int, hidden_layers: Sequence[int], n_outputs: int, batch_size: int) -> int:
    """Multiply-adds of a training step's largest matrix product: ``batch x fan_in x fan_out``."""
    widths = [n_features, *hidden_layers, n_outputs]
    return batch_size * max(fan_in * fan_out for fan_in, fan_out in zip(widths, widths[1:]))


def chosen_threads(setting: int | None, product: int) -> int | None:
    """The BLAS threads for ``setting`` (None: auto) and a step's largest product; None: leave them as they are."""
    if setting is not None:
        return setting
    return 1 if product < SMALL_PRODUCT else None


@contextlib.contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` BLAS threads (None: as they are), restored afterwards."""
    if threads is None:
        yield
        return
    with _controller().limit(limits=threads, user_api="blas"):
        yield


def current_threads() -> int | None:
    """The BLAS threads in effect now (the most of the loaded BLAS libraries'); None: no BLAS found."""
    counts = [lib["num_threads"] for lib in _controller().select(user_api="blas").info()]
    return max(counts) if counts else None


@functools.lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    """The loaded BLAS libraries, found once per process (it takes a few ms)."""
    return ThreadpoolController()
