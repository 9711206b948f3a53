"""The published rank aggregations of training-free scores, as score-vocabulary expressions.

AZ-NAS (Lee & Ham, CVPR 2024) and VKDNW (Tybl & Neumann, CVPR 2025) rank a *population* of
candidates by the sum over their components of ``log(rank)`` (``logrank`` in
:mod:`tgsage.scores`); a single network has no such score. Use them wherever a score is
accepted, e.g. ``evaluate(AGGREGATIONS["az_nas"], population)``, ``predictivity_table(...,
scores=[AGGREGATIONS["vkdnw_agg"]])`` or a search config's ``score:``.

- ``az_nas``: expressivity, progressivity, trainability and complexity (``flops``), as the
  AZ-NAS paper and code;
- ``vkdnw_agg``: ``vkdnw_single``, AZ-NAS's expressivity and trainability, ``jacob_cov`` and
  ``flops``, as the VKDNW code's aggregation (its Table 1 "VKDNW_agg").
"""

from __future__ import annotations

AGGREGATIONS: dict[str, str] = {
    "az_nas": "logrank(az_expressivity, az_progressivity, az_trainability, flops)",
    "vkdnw_agg": "logrank(vkdnw_single, az_expressivity, az_trainability, jacob_cov, flops)",
}
