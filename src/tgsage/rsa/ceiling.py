"""Split-half noise ceilings of neural recordings: how much RDM similarity the data allow.

The repetitions of a :class:`~tgsage.data.Recording` are split in two halves; the halves' mean
responses give a per-site reliability (Pearson r across stimuli) and an RDM reliability: the
similarity of the two halves' RDMs, measured with the same RDM ``method`` and ``comparison``
that score candidates against the teacher (:func:`~tgsage.rsa.compute_rdms`,
:func:`~tgsage.rsa.compare`), so a ceiling is on the scale of the scores it bounds. Both are
averaged over random splits and Spearman-Brown corrected to the full number of repetitions,
``2r / (1 + r)`` (exact for Pearson r under the classical test model, the usual approximation
for rank correlations).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tgsage.errors import DataError
from tgsage.rsa.compare import compare
from tgsage.rsa.rdm import compute_rdms

if TYPE_CHECKING:
    from tgsage.data.neural import Recording


@dataclass(frozen=True)
class NoiseCeiling:
    """Split-half reliability of one region, Spearman-Brown corrected to all repetitions.

    ``site_reliability`` has one value per site (NaN for a site that is constant in a half;
    such sites are skipped by the median). ``rdm_split_half`` is the similarity of the two
    halves' RDMs (``method`` RDMs compared by ``comparison``), ``rdm_reliability`` its
    corrected value.
    """

    region: str
    n_sites: int
    n_stimuli: int
    median_repetitions: float
    n_splits: int
    site_reliability: np.ndarray
    site_median: float
    rdm_split_half: float
    rdm_reliability: float
    method: str = "correlation"
    comparison: str = "pearson"


def spearman_brown(r: float | np.ndarray) -> float | np.ndarray:
    """Reliability of the full data from a split-half correlation: 2r / (1 + r)."""
    r = np.clip(r, -0.999999, 1.0)
    return 2 * r / (1 + r)


def _pearson_cols(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of matching columns; NaN where a column is constant."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=0) / np.where(den > 0, den, 1), np.nan)


def _group_codes(recording: Recording, group: str | Any, keep: np.ndarray) -> np.ndarray | None:
    """Integer group codes of the kept stimuli (None: per-stimulus RDMs)."""
    if group is None:
        return None
    if isinstance(group, str):
        return recording.labels(group)[0][keep]
    codes = np.asarray(group.cpu() if hasattr(group, "cpu") else group).astype(np.int64)
    if codes.shape != (recording.n_stimuli,) or (codes < 0).any():
        raise DataError(
            f"group codes must be {recording.n_stimuli} non-negative integers "
            f"(one per stimulus), got shape {codes.shape}"
        )
    return codes[keep]


def split_half_noise_ceiling(
    recording: Recording,
    n_splits: int = 20,
    seed: int = 0,
    group: str | Any = None,
    rdm: bool = True,
    *,
    method: str = "correlation",
    comparison: str = "pearson",
) -> dict[str, NoiseCeiling]:
    """Split-half noise ceiling per region of ``recording``.

    For each of ``n_splits`` seeded random splits, the repetition indices are shuffled (one
    order shared by all stimuli, as Brain-Score does) and every stimulus' available repetitions
    are cut in that order into two equal halves (an odd one out is dropped); the halves' means
    give (1) per-site Pearson r across stimuli and (2) the ``comparison`` similarity of the two
    halves' ``method`` RDMs, optionally over stimuli averaged within ``group`` (a stimulus label
    name such as ``"object_name"``, or integer codes per stimulus, e.g. a probe set's labeling
    after :meth:`Recording.align`). Both are averaged over splits, then Spearman-Brown
    corrected. ``rdm=False`` skips the RDM level (its cost grows with stimuli squared; it is
    then NaN). Stimuli with fewer than 2 repetitions are left out; a recording without
    repetitions raises DataError.
    """
    counts = recording.repetition_counts()
    keep = counts >= 2
    if keep.sum() < 3:
        raise DataError(
            "a split-half noise ceiling needs at least 3 stimuli with 2 or more "
            "repetitions; this recording has averaged responses only"
        )
    resp = recording.responses[:, keep]
    counts = counts[keep]
    codes = _group_codes(recording, group, keep)
    valid = ~np.isnan(resp).all(axis=2)
    filled = np.nan_to_num(resp, nan=0.0).astype(np.float64)
    half = (counts // 2).astype(np.float64)
    rng = np.random.default_rng(seed)
    regions = list(recording.regions())
    masks = {r: recording.region == r for r in regions}
    site_r = np.zeros((n_splits, recording.n_sites))
    rdm_r = np.zeros((n_splits, len(regions)))
    for i in range(n_splits):
        # one random order of the repetition slots shared by all stimuli (a global split of
        # the repetitions); missing repetitions sort last
        keys = np.broadcast_to(rng.random((valid.shape[0], 1)), valid.shape).copy()
        keys[~valid] = np.inf
        rank = np.argsort(np.argsort(keys, axis=0), axis=0)
        in_a = rank < half
        in_b = (rank >= half) & (rank < 2 * half)
        mean_a = np.einsum("rs,rsn->sn", in_a, filled) / half[:, None]
        mean_b = np.einsum("rs,rsn->sn", in_b, filled) / half[:, None]
        site_r[i] = _pearson_cols(mean_a, mean_b)
        if rdm:
            halves = [
                compute_rdms({r: m[:, masks[r]] for r in regions}, method, groups=codes)
                for m in (mean_a, mean_b)
            ]
            with warnings.catch_warnings():  # a constant half-RDM compares as 0: no ceiling
                warnings.simplefilter("ignore", RuntimeWarning)
                rdm_r[i] = compare(halves[0], halves[1], comparison).diagonal().cpu().numpy()
    with np.errstate(invalid="ignore"):
        mean_site_r = site_r.mean(axis=0)
    out = {}
    for j, reg in enumerate(regions):
        rel = spearman_brown(mean_site_r[masks[reg]])
        finite = rel[np.isfinite(rel)]
        rdm_raw = float(rdm_r[:, j].mean()) if rdm else float("nan")
        out[reg] = NoiseCeiling(
            region=reg,
            n_sites=int(masks[reg].sum()),
            n_stimuli=int(keep.sum()),
            median_repetitions=float(np.median(counts)),
            n_splits=n_splits,
            site_reliability=rel,
            site_median=float(np.median(finite)) if finite.size else 0.0,
            rdm_split_half=rdm_raw,
            rdm_reliability=float(spearman_brown(rdm_raw)),
            method=method,
            comparison=comparison,
        )
    return out
