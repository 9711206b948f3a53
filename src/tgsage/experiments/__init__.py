"""Experiments on top of searches: predictivity (paper 4.1), re-ranking (4.3), efficiency (4.2).

Inputs are plain tables: :class:`CandidateRecord` rows (``records_from_study`` reads them from
an Optuna study, ``as_candidate_records`` from dicts) and :class:`PoolRecord` rows (written by
``run_predictivity``). Nothing here depends on how the search engine stores its trials beyond
the documented user attributes.
"""

from tgsage.experiments.efficiency import (
    BestSoFar,
    SearchCurve,
    best_so_far,
    compare_searches,
    step_values,
    table_at_cost,
)
from tgsage.experiments.ground_truth import GroundTruth, load_nb201_api, load_nb201_table
from tgsage.experiments.predictivity import (
    as_spec,
    measure_architecture,
    pool_from_records,
    pool_from_specs,
    pool_summary,
    random_pool,
    run_predictivity,
)
from tgsage.experiments.records import (
    BudgetPoint,
    CandidateRecord,
    PoolRecord,
    as_candidate_records,
    read_jsonl,
    read_pool_records,
    records_from_study,
)
from tgsage.experiments.rerank import (
    LongRun,
    RerankEntry,
    RerankResult,
    make_train_fn,
    rerank,
    top_k,
)
from tgsage.experiments.stats import (
    AlphaRow,
    Estimate,
    PredictivityRow,
    SideBySide,
    alpha_sweep,
    correlation_estimates,
    kendall_tau_b,
    pearson,
    pool_budgets,
    pool_ranks,
    pool_scores,
    precision_at_k,
    predictivity_table,
    side_by_side,
    spearman,
)

__all__ = [
    "AlphaRow",
    "BestSoFar",
    "BudgetPoint",
    "CandidateRecord",
    "Estimate",
    "GroundTruth",
    "LongRun",
    "PoolRecord",
    "PredictivityRow",
    "RerankEntry",
    "RerankResult",
    "SearchCurve",
    "SideBySide",
    "alpha_sweep",
    "as_candidate_records",
    "as_spec",
    "best_so_far",
    "compare_searches",
    "correlation_estimates",
    "kendall_tau_b",
    "load_nb201_api",
    "load_nb201_table",
    "make_train_fn",
    "measure_architecture",
    "pearson",
    "pool_budgets",
    "pool_from_records",
    "pool_from_specs",
    "pool_ranks",
    "pool_scores",
    "pool_summary",
    "precision_at_k",
    "predictivity_table",
    "random_pool",
    "read_jsonl",
    "read_pool_records",
    "records_from_study",
    "rerank",
    "run_predictivity",
    "side_by_side",
    "spearman",
    "step_values",
    "table_at_cost",
    "top_k",
]
