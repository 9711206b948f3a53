"""run_search reports progress through a callback and draws nothing itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tgsage.search import SearchStatus, run_search, summary_line

Factory = Callable[..., dict[str, Any]]


def test_on_status_sees_the_search_grow_to_its_end(sim_config: Factory) -> None:
    seen: list[SearchStatus] = []
    summary = run_search(sim_config(n_candidates=4), seen.append, poll=0.05)
    assert summary.finished and seen, "the callback was never called"
    assert all(isinstance(s, SearchStatus) for s in seen)
    done = [s.complete for s in seen]
    assert done == sorted(done) and done[-1] == 4  # never goes back, ends complete
    assert seen[-1].finished and summary_line(seen[-1]).startswith("4/4 completed")


def test_progress_keyword_is_deprecated_but_runs(sim_config: Factory) -> None:
    with pytest.warns(DeprecationWarning, match="on_status"):
        summary = run_search(sim_config(n_candidates=2), progress=False)
    assert summary.finished and summary.complete == 2
