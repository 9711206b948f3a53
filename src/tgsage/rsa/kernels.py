"""Image x image Gram matrices and the two similarities built on them: linear CKA and the
relation similarity of DisWOT.

An RDM keeps only correlation distances between images; some similarities need the raw inner
products instead. For a layer with flattened activations ``X`` (n images x d features) the Gram
matrix is ``G = X X^T`` (n x n). From the Grams alone:

* **linear CKA** (Kornblith et al. ICML 2019) of two layers is the cosine similarity of their
  double-centred Grams, ``<H Ga H, H Gb H>_F / (||H Ga H||_F ||H Gb H||_F)``, equal to CKA of
  the column-centred features (centring the features is centring the Gram);
* the **relation similarity** is DisWOT's (Dong et al. CVPR 2023) batch-relation term, the
  similarity-preserving distillation loss of Tung & Mori (ICCV 2019): each Gram's rows are
  L2-normalised, and the distance is ``||norm(Ga) - norm(Gb)||_F^2 / n^2``. Since the rows are
  unit vectors, that distance equals ``(2 - 2 r) / n`` with ``r = mean_i cos(Ga[i], Gb[i])``,
  so tgsage reports ``r`` (in [-1, 1]; higher = more similar), which ranks candidates exactly
  as DisWOT's distance does at a fixed probe size.

Rules for degenerate layers: a layer whose centred Gram is zero (constant activations) has CKA
0 with anything, with a RuntimeWarning; an image whose Gram row is zero (all-zero activations,
e.g. a dead ReLU layer) contributes 0 to the relation similarity's mean.

Both similarities of all ``ka x kb`` layer pairs are one matrix product of the flattened,
normalised Grams (float64 accumulation).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tgsage.errors import InputError
from tgsage.rsa._tensor import ACC_DTYPE, ArrayLike, as_layers, as_matrix

KERNEL_COMPARISONS = ("cka", "relation")
_BLOCK = 4096  # features per float32 partial product, summed in float64


@dataclass(frozen=True)
class Grams:
    """Gram matrices ``X X^T`` of several layers over the same n images (or groups)."""

    matrices: torch.Tensor  # (k, n, n) float64
    names: tuple[str, ...]
    conditions: tuple[Any, ...] | None = None  # group order when grouped

    def __post_init__(self) -> None:
        m = self.matrices
        if m.ndim != 3 or m.shape[1] != m.shape[2]:
            raise InputError(f"Gram matrices must be (layers, n, n), got {tuple(m.shape)}")
        if len(self.names) != m.shape[0]:
            raise InputError(f"{len(self.names)} names for {m.shape[0]} Gram matrices")

    @property
    def n(self) -> int:
        return int(self.matrices.shape[1])

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, key: str | Sequence[str]) -> Grams:
        keys = [key] if isinstance(key, str) else list(key)
        missing = [k for k in keys if k not in self.names]
        if missing:
            raise InputError(f"no Gram matrix for layers {missing}; have {list(self.names)}")
        idx = [self.names.index(k) for k in keys]
        return Grams(self.matrices[idx], tuple(keys), self.conditions)

    def concat(self, other: Grams) -> Grams:
        if other.n != self.n:
            raise InputError(f"Gram matrices over {self.n} and {other.n} images")
        return Grams(
            torch.cat([self.matrices, other.matrices.to(self.matrices.device)]),
            self.names + other.names,
            self.conditions,
        )

    def triangles(self) -> torch.Tensor:
        """(k, n (n + 1) / 2) upper triangles incl. the diagonal (how teacher files store them)."""
        iu = torch.triu_indices(self.n, self.n, device=self.matrices.device)
        return self.matrices[:, iu[0], iu[1]]

    @classmethod
    def from_triangles(
        cls,
        triangles: ArrayLike,
        names: Sequence[str],
        conditions: Sequence[Any] | None = None,
    ) -> Grams:
        t = torch.as_tensor(triangles, dtype=ACC_DTYPE)
        if t.ndim != 2:
            raise InputError(f"Gram triangles must be (layers, entries), got {tuple(t.shape)}")
        n = round((-1 + (1 + 8 * t.shape[1]) ** 0.5) / 2)
        if n * (n + 1) // 2 != t.shape[1]:
            raise InputError(f"{t.shape[1]} entries are not the upper triangle of a square")
        m = torch.zeros(t.shape[0], n, n, dtype=ACC_DTYPE)
        iu = torch.triu_indices(n, n)
        m[:, iu[0], iu[1]] = t
        m = m + m.transpose(1, 2) - torch.diag_embed(torch.diagonal(m, dim1=1, dim2=2))
        return cls(m, tuple(names), tuple(conditions) if conditions is not None else None)


def gram(x: torch.Tensor) -> torch.Tensor:
    """``X X^T`` of an (n, d) matrix: float32 products over blocks of features, float64 sum."""
    n, d = x.shape
    if x.dtype == torch.float64:
        return x @ x.T
    out = torch.zeros(n, n, dtype=ACC_DTYPE, device=x.device)
    xf = x.float()
    for s in range(0, d, _BLOCK):
        blk = xf[:, s : s + _BLOCK]
        out += (blk @ blk.T).to(ACC_DTYPE)
    return out


def gram_matrices(
    features: ArrayLike | Mapping[str, ArrayLike],
    *,
    device: torch.device | str | None = None,
    conditions: Sequence[Any] | None = None,
) -> Grams:
    """Gram matrices of every layer's flattened activations (rows = images or group means)."""
    layers = as_layers(features)
    mats, n = [], None
    for name, value in layers.items():
        x = as_matrix(value, f"layer {name!r}", device=device)
        if n is not None and x.shape[0] != n:
            raise InputError(f"layer {name!r} has {x.shape[0]} rows, others {n}")
        n = x.shape[0]
        mats.append(gram(x))
    if not mats:
        raise InputError("no layers to compute Gram matrices of")
    return Grams(torch.stack(mats), tuple(layers), tuple(conditions) if conditions else None)


def _centred(m: torch.Tensor) -> torch.Tensor:
    """H G H for a stack of Grams (H = I - 11^T/n)."""
    row = m.mean(dim=2, keepdim=True)
    col = m.mean(dim=1, keepdim=True)
    return m - row - col + m.mean(dim=(1, 2), keepdim=True)


def _unit_rows(flat: torch.Tensor, names: Sequence[str], what: str) -> torch.Tensor:
    norm = torch.linalg.vector_norm(flat, dim=1)
    scale = flat.abs().amax(dim=1).clamp_min(1e-300)
    bad = norm <= 1e-12 * scale * flat.shape[1] ** 0.5
    bad |= norm == 0
    if bool(bad.any()):
        warnings.warn(
            f"layers {[names[i] for i in torch.nonzero(bad).flatten().tolist()]} have no "
            f"variance; their {what} is set to 0",
            RuntimeWarning,
            stacklevel=3,
        )
    return flat * torch.where(bad, torch.zeros_like(norm), 1.0 / norm.clamp_min(1e-300))[:, None]


def _check_pair(a: Grams, b: Grams) -> None:
    if a.n != b.n:
        raise InputError(
            f"Gram matrices over different numbers of images: {a.n} vs {b.n}; use the same "
            "probe images (and grouping) for both"
        )
    if a.conditions is not None and b.conditions is not None and a.conditions != b.conditions:
        raise InputError("Gram matrices use different group orders; group both the same way")


def cka_grams(a: Grams, b: Grams | None = None) -> torch.Tensor:
    """Linear CKA of every layer of ``a`` with every layer of ``b`` (float64, (ka, kb))."""
    b = a if b is None else b
    _check_pair(a, b)
    ua = _unit_rows(_centred(a.matrices.to(ACC_DTYPE)).flatten(1), a.names, "CKA")
    ub = ua if b is a else _unit_rows(_centred(b.matrices.to(ACC_DTYPE)).flatten(1), b.names, "CKA")
    return (ua @ ub.to(ua.device).T).clamp_(-1.0, 1.0)


def relation_grams(a: Grams, b: Grams | None = None) -> torch.Tensor:
    """Relation similarity (mean row cosine of the Grams) of every pair of layers."""
    b = a if b is None else b
    _check_pair(a, b)

    def rows(g: Grams) -> torch.Tensor:
        m = g.matrices.to(ACC_DTYPE)
        norm = torch.linalg.vector_norm(m, dim=2, keepdim=True)
        return torch.where(norm > 0, m / norm.clamp_min(1e-300), torch.zeros_like(m)).flatten(1)

    ra = rows(a)
    rb = ra if b is a else rows(b).to(ra.device)
    return ((ra @ rb.T) / a.n).clamp_(-1.0, 1.0)


def compare_grams(a: Grams, b: Grams | None = None, method: str = "cka") -> torch.Tensor:
    """All-pairs similarity of Gram matrices: ``"cka"`` or ``"relation"``."""
    if method == "cka":
        return cka_grams(a, b)
    if method == "relation":
        return relation_grams(a, b)
    raise InputError(f"unknown Gram comparison {method!r}; choose one of {KERNEL_COMPARISONS}")


__all__ = [
    "KERNEL_COMPARISONS",
    "Grams",
    "cka_grams",
    "compare_grams",
    "gram",
    "gram_matrices",
    "relation_grams",
]
