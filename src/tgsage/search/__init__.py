"""Search engine: the tracker (Optuna storages), workers, fault handling, status.

``run_search(config)`` runs a search with N local worker processes on a storage (journal file by
default, PostgreSQL for many machines); ``run_worker(storage, study)`` joins one from anywhere;
``search_status(storage, study)`` reads progress, cost and the leaderboard. Every candidate is
one Optuna trial (see :mod:`tgsage.search.records` for what is stored and how it is counted).
"""

from tgsage.search.config import DataConfig, SearchConfig, SimulateConfig, load_config
from tgsage.search.records import Counts, Row, count_trials, leaderboard
from tgsage.search.runner import SearchInterrupted, SearchSummary, run_search, start_workers
from tgsage.search.status import SearchStatus, search_status, status_of, summary_line
from tgsage.search.storage import create_or_load_study, load_study, open_storage, redact
from tgsage.search.worker import Worker, WorkerSummary, run_worker

__all__ = [
    "Counts",
    "DataConfig",
    "Row",
    "SearchConfig",
    "SearchInterrupted",
    "SearchStatus",
    "SearchSummary",
    "SimulateConfig",
    "Worker",
    "WorkerSummary",
    "count_trials",
    "create_or_load_study",
    "leaderboard",
    "load_config",
    "load_study",
    "open_storage",
    "redact",
    "run_search",
    "run_worker",
    "search_status",
    "start_workers",
    "status_of",
    "summary_line",
]
