"""Training steps that skip work which cannot reach a network's output.

A NAS-Bench-201 cell whose node reaches the output only through ``none`` edges (23.2% of the
15,625 cells; 7.9% of all cells' convolution work) still computes that node in the benchmark's
reference graph, and a plain training loop pays for its convolutions and batch norms at every
step although nothing downstream reads them. Within :func:`skip_dead_work`, cells that know
their dead nodes skip them
(:class:`~tgsage.spaces.nb201.NB201Cell`). Outputs and gradients are bit-identical: dead
nodes are not on any path to the loss, so autograd never visits them and their parameters
keep ``grad = None`` either way. Two things differ, which is why only training steps use it
(:class:`~tgsage.train.Trainer`): forward hooks on the skipped modules do not fire, and the
batch-norm layers of dead nodes do not update their running statistics (which nothing reads).
Zero-cost proxies (naswot hooks every ReLU), FLOP counts and feature extraction run outside it
and see the whole graph, as the papers define them.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_SKIP = contextvars.ContextVar("tgsage_skip_dead_work", default=False)


@contextlib.contextmanager
def skip_dead_work() -> Iterator[None]:
    """Within the block, modules that can tell skip the work that cannot reach the output."""
    token = _SKIP.set(True)
    try:
        yield
    finally:
        _SKIP.reset(token)


def dead_work_skipped() -> bool:
    """Whether the caller runs inside :func:`skip_dead_work`."""
    return _SKIP.get()


__all__ = ["dead_work_skipped", "skip_dead_work"]
