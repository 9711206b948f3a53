"""Comparing RDMs: every pair of two stacks at once (teacher layers x candidate layers).

Methods (``method=``):

* ``"pearson"`` (default, the paper's): Pearson correlation of the upper triangles.
* ``"spearman"``: Pearson of the average ranks (ties get their mean rank, as in scipy).
* ``"kendall_a"``: Kendall's tau-a, ``(concordant - discordant) / (N (N-1) / 2)`` over all
  pairs of entries; computed from scipy's O(N log N) tau-b and the tie counts.

Linear CKA (Kornblith et al. 2019) compares *features*, not RDMs: see :func:`cka`.

Rule for degenerate RDMs: an RDM whose upper triangle is constant (a one-feature layer under
correlation distance, a layer of constant rows) carries no information; its similarity to any
RDM is defined as 0 and a :class:`RuntimeWarning` says which layer it was.

Pearson and Spearman are one centred, normalised matrix product in float64 over chunks of the
triangle, so all ``ka x kb`` pairs cost about as much as reading the RDMs once.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.stats
import torch

from tgsage.errors import InputError, ProbeMismatchError
from tgsage.rsa._tensor import ACC_DTYPE, ArrayLike, as_layers, as_matrix, row_sums
from tgsage.rsa.rdm import RDMs, group_means

COMPARE_METHODS = ("pearson", "spearman", "kendall_a")
_CHUNK = 1 << 16  # triangle entries per chunk of the comparison product (cache-sized)
_BLOCK = 4096  # entries per float32 partial sum


def check_same_conditions(a: RDMs, b: RDMs) -> None:
    """Refuse to compare RDMs measured on different probe images or groups."""
    fa, fb = a.metadata.get("probe_fingerprint"), b.metadata.get("probe_fingerprint")
    if fa is not None and fb is not None and fa != fb:
        raise ProbeMismatchError(
            f"teacher RDMs were measured on probe set {fa} but candidate RDMs on {fb}; "
            "measure both on the same probe images (same content and order)"
        )
    if a.n_conditions != b.n_conditions:
        raise InputError(
            f"RDMs over different numbers of conditions: {a.n_conditions} vs {b.n_conditions} "
            f"(layers {list(a.names)[:3]} vs {list(b.names)[:3]}); use the same probe images "
            "and grouping for both"
        )
    if a.conditions is not None and b.conditions is not None and a.conditions != b.conditions:
        raise InputError("RDMs use different group orders; pass the same group_order to both")


def _pearson_rows(
    a: torch.Tensor, b: torch.Tensor, names_a: Sequence[str], names_b: Sequence[str]
) -> torch.Tensor:
    """All-pairs Pearson correlation of the rows of a (ka, N) and b (kb, N).

    One pass over the data: cache-sized chunks of all rows, shifted by an estimate of their
    means, feed one Gram product that yields every covariance at once.
    """
    b = b.to(a.device)
    rows = [a] if b is a else [a, b.to(a.dtype)]
    k = sum(r.shape[0] for r in rows)
    n = a.shape[1]
    dtype = a.dtype
    # Shift each row by an estimate of its mean (from the first chunk): covariances are
    # shift-invariant, and centring this way needs no separate pass over the data.
    shift = torch.cat([r[:, :_CHUNK].to(ACC_DTYPE).mean(dim=1) for r in rows])
    shift_c = shift.to(dtype)[:, None]
    gram = torch.zeros(k, k, dtype=ACC_DTYPE, device=a.device)
    sums = torch.zeros(k, dtype=ACC_DTYPE, device=a.device)
    buf = torch.empty(k, min(n, _CHUNK), dtype=dtype, device=a.device)
    for s in range(0, n, _CHUNK):
        width = min(_CHUNK, n - s)
        centred = buf[:, :width]
        torch.cat([r[:, s : s + width] for r in rows], out=centred)
        centred -= shift_c
        if dtype == torch.float64:
            gram += centred @ centred.T
            sums += centred.sum(dim=1)
            continue
        # float32 products summed in float32 within blocks of 4096 entries and in float64
        # across blocks (chunks are small enough to stay in cache): ~1e-7 accurate.
        sums += row_sums(centred)
        full = width - width % _BLOCK
        if full:
            blocks = centred[:, :full].unflatten(1, (full // _BLOCK, _BLOCK)).transpose(0, 1)
            gram += torch.bmm(blocks, blocks.transpose(1, 2)).to(ACC_DTYPE).sum(dim=0)
        if full < width:
            rest = centred[:, full:]
            gram += (rest @ rest.T).to(ACC_DTYPE)
    offset = sums / n
    mean = shift + offset
    cov = gram / n - torch.outer(offset, offset)
    var = torch.diagonal(cov).clone()
    # Constant within the input's float resolution: no information (module rule).
    eps = torch.finfo(a.dtype).eps
    degenerate = var <= 4 * eps * eps * mean.square()
    if bool(degenerate.any()):
        names = list(names_a) + (list(names_b) if b is not a else [])
        bad = sorted({names[i] for i in torch.nonzero(degenerate).flatten().tolist()})
        warnings.warn(
            f"RDMs of {bad} are constant (no information, e.g. a one-feature or dead layer); "
            "their similarity is set to 0",
            RuntimeWarning,
            stacklevel=3,
        )
    inv = torch.where(degenerate, torch.zeros_like(var), var.clamp_min(1e-300).rsqrt())
    corr = cov * inv[:, None] * inv[None, :]
    ka = a.shape[0]
    out = corr[:ka, ka:] if b is not a else corr
    return out.clamp(-1.0, 1.0).contiguous()


def average_ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks (1-based, float64) along the last dim with ties sharing their mean rank.

    Equal to ``scipy.stats.rankdata(..., method="average")`` row by row.
    """
    v2 = v.reshape(-1, v.shape[-1])
    out = torch.empty(v2.shape, dtype=ACC_DTYPE, device=v.device)
    n = v2.shape[1]
    for r in range(v2.shape[0]):  # one sort per RDM; no loop over entries
        sorted_v, order = torch.sort(v2[r])
        _, counts = torch.unique_consecutive(sorted_v, return_counts=True)
        ends = torch.cumsum(counts, 0).to(ACC_DTYPE)
        mean_rank = ends - (counts.to(ACC_DTYPE) - 1) / 2
        ranks_sorted = torch.repeat_interleave(mean_rank, counts, output_size=n)
        out[r, order] = ranks_sorted
    return out.reshape(v.shape)


def kendall_tau_a(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-a of two vectors in O(N log N) (scipy's tau-b, tie-corrected back).

    tau_a = (n_c - n_d) / n0 and tau_b = (n_c - n_d) / sqrt((n0 - n1)(n0 - n2)), so
    tau_a = tau_b * sqrt((n0 - n1)(n0 - n2)) / n0. Constant input gives 0 (see module rule).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    n = x.size
    n0 = n * (n - 1) / 2
    if n < 2:
        return 0.0

    def tied_pairs(v: np.ndarray) -> float:
        _, c = np.unique(v, return_counts=True)
        c = c.astype(np.float64)
        return float((c * (c - 1) / 2).sum())

    n1, n2 = tied_pairs(x), tied_pairs(y)
    if n1 == n0 or n2 == n0:
        return 0.0
    tau_b = scipy.stats.kendalltau(x, y, variant="b").statistic
    return float(tau_b * np.sqrt((n0 - n1) * (n0 - n2)) / n0)


def compare(a: RDMs, b: RDMs | None = None, method: str = "pearson") -> torch.Tensor:
    """Similarity of every RDM in ``a`` with every RDM in ``b`` (default: ``a`` with itself).

    Returns a float64 tensor of shape (len(a), len(b)) on ``a``'s device.
    """
    if method not in COMPARE_METHODS:
        raise InputError(f"unknown comparison {method!r}; choose one of {COMPARE_METHODS}")
    b = a if b is None else b
    check_same_conditions(a, b)
    if a.n_conditions < 3:
        raise InputError(
            f"comparing RDMs needs at least 3 conditions (3 pairs), got {a.n_conditions}"
        )
    va, vb = a.dissimilarities, b.dissimilarities.to(a.dissimilarities.device)
    if method == "pearson":
        return _pearson_rows(va, vb, a.names, b.names)
    if method == "spearman":
        ra = average_ranks(va)
        rb = ra if b is a else average_ranks(vb)
        return _pearson_rows(ra, rb, a.names, b.names)
    na, nb = a.numpy(), b.numpy()
    out = np.array([[kendall_tau_a(x, y) for y in nb] for x in na])
    const = [a.names[i] for i, x in enumerate(na) if np.ptp(x) == 0]
    const += [b.names[j] for j, y in enumerate(nb) if np.ptp(y) == 0]
    if const:
        warnings.warn(
            f"RDMs of {sorted(set(const))} are constant; similarity set to 0",
            RuntimeWarning,
            stacklevel=2,
        )
    return torch.as_tensor(out, dtype=ACC_DTYPE, device=va.device)


# --------------------------------------------------------------------------- CKA


def centered_gram(x: torch.Tensor) -> torch.Tensor:
    """Double-centred linear Gram matrix H X X^T H (n x n), from column-centred features."""
    mean = x.sum(dim=0, keepdim=True, dtype=ACC_DTYPE) / x.shape[0]
    xc = x - mean.to(x.dtype)
    return xc @ xc.T


def cka(
    features_a: ArrayLike | Mapping[str, ArrayLike],
    features_b: ArrayLike | Mapping[str, ArrayLike] | None = None,
    *,
    groups: ArrayLike | None = None,
    group_order: Sequence[Any] | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Linear CKA between every layer of ``features_a`` and every layer of ``features_b``.

    ``CKA(X, Y) = ||Xc^T Yc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred X, Y,
    computed as the cosine similarity of the double-centred Gram matrices, so all pairs are one
    matrix product. Rows can be group-averaged first, as for RDMs. A layer with zero variance
    gets similarity 0 (with a warning). For very many images use
    :func:`tgsage.rsa.compare_features` with ``comparison="cka"``, which streams.
    """
    la = as_layers(features_a)
    lb = la if features_b is None else as_layers(features_b)

    def grams(layers: dict[str, Any]) -> tuple[torch.Tensor, list[str]]:
        out, n_img = [], None
        for name, value in layers.items():
            x = as_matrix(value, f"layer {name!r}", device=device)
            if n_img is not None and x.shape[0] != n_img:
                raise InputError(f"layer {name!r} has {x.shape[0]} images, others {n_img}")
            n_img = x.shape[0]
            if groups is not None:
                x, _ = group_means(x, groups, group_order)
            out.append(centered_gram(x).reshape(-1))
        return torch.stack(out), list(layers)

    ga, na = grams(la)
    gb, nb = (ga, na) if features_b is None else grams(lb)
    if ga.shape[1] != gb.shape[1]:
        raise InputError(
            f"CKA needs the same images on both sides: {int(ga.shape[1] ** 0.5)} vs "
            f"{int(gb.shape[1] ** 0.5)}"
        )

    def inv_norms(g: torch.Tensor, names: list[str]) -> torch.Tensor:
        norm = torch.linalg.vector_norm(g, dim=1, dtype=ACC_DTYPE)
        bad = norm <= torch.finfo(g.dtype).eps * g.abs().amax(dim=1).to(ACC_DTYPE) * g.shape[1]
        bad |= norm == 0
        if bool(bad.any()):
            warnings.warn(
                f"layers {[names[i] for i in torch.nonzero(bad).flatten().tolist()]} "
                "have no variance; CKA set to 0",
                RuntimeWarning,
                stacklevel=3,
            )
        return torch.where(bad, torch.zeros_like(norm), 1.0 / norm.clamp_min(1e-300))

    ia, ib = inv_norms(ga, na), inv_norms(gb, nb)
    acc = torch.zeros(ga.shape[0], gb.shape[0], dtype=ACC_DTYPE, device=ga.device)
    for s in range(0, ga.shape[1], _CHUNK):
        acc += ga[:, s : s + _CHUNK].to(ACC_DTYPE) @ gb[:, s : s + _CHUNK].to(ACC_DTYPE).T
    return (acc * ia[:, None] * ib[None, :]).clamp_(-1.0, 1.0)


__all__ = [
    "COMPARE_METHODS",
    "average_ranks",
    "check_same_conditions",
    "cka",
    "compare",
    "kendall_tau_a",
]
