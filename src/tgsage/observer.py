"""How long library calls report progress without drawing anything themselves.

Calls that run for minutes (``run_demo``, ``rerank_run``) take an :class:`Observer` and tell it
what they do: a line of news, a training run with its total examples, a search with its
snapshots. The base class shows nothing (news goes to the ``tgsage`` logger), so a script or a
test passes nothing; the command line passes one that draws progress bars
(``tgsage.cli.display.RichObserver``); a notebook may subclass it the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

log = logging.getLogger("tgsage")

#: Called with each :class:`tgsage.train.Progress` of a training run.
TrainingCallback = Callable[[Any], None]
#: Called with each :class:`tgsage.search.SearchStatus` snapshot of a running search.
StatusCallback = Callable[[Any], None]


class Observer:
    """Receives progress; every method may be overridden, none must be."""

    def message(self, text: str) -> None:
        """One line of news (a stage started, a result, a cache reused)."""
        log.info(text)

    def training(
        self, description: str, total_examples: int | None
    ) -> AbstractContextManager[TrainingCallback | None]:
        """A context around one training run; yields the trainer's progress callback or None.
        ``total_examples`` is what the run will process (None: unknown)."""
        return nullcontext(None)

    def search(self, name: str, n_candidates: int) -> AbstractContextManager[StatusCallback | None]:
        """A context around one search; yields ``run_search``'s ``on_status`` or None."""
        return nullcontext(None)
