"""Exact teacher x candidate similarities for probe sets too large for n x n matrices.

For correlation and cosine RDMs, ``RDM = 1 - Z Z^T`` with a row embedding Z, and the Pearson
correlation of two RDMs' upper triangles only needs five sums over pairs i < j::

    sum a_ij        = (||sum_i z_i||^2 - sum_i g_i) / 2            g_i = ||z_i||^2
    sum a_ij^2      = (||Z^T Z||_F^2 - sum_i g_i^2) / 2
    sum a_ij b_ij   = (||Z^T W||_F^2 - sum_i g_i h_i) / 2

(``corr(1 - a, 1 - b) = corr(a, b)``). Every term is a sum over images, so it accumulates over
image batches in float64 with memory that depends on the feature counts, never on n. Linear
CKA uses the same accumulators on raw features with column centring applied at the end.

:func:`compare_features` picks this path automatically when the dense RDMs would not fit in the
memory budget (and is cheaper), and otherwise computes dense RDMs; both agree to float
precision. :class:`StreamingSimilarity` takes batches directly, e.g. from a forward pass over
the probe images, so activations of all images never have to be held at once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import torch

from tgsage.errors import InputError
from tgsage.rsa._tensor import ACC_DTYPE, ArrayLike, as_layers, as_matrix
from tgsage.rsa.compare import cka, compare
from tgsage.rsa.rdm import (
    EMBEDDABLE_METHODS,
    compute_rdms,
    default_subsample_size,
    n_pairs,
    rdm_embedding,
    subsample_indices,
)

STREAMABLE = ("pearson", "cka")


@dataclass
class _LayerStats:
    dim: int
    s: torch.Tensor  # (d,) sum of rows
    gram: torch.Tensor  # (d, d) Z^T Z
    g_sum: float = 0.0  # sum ||z_i||^2
    g2_sum: float = 0.0  # sum ||z_i||^4


class StreamingSimilarity:
    """Accumulates teacher and candidate activations batch by batch; exact at the end.

    Args:
        comparison: ``"pearson"`` (Pearson of RDM upper triangles) or ``"cka"`` (linear CKA).
        rdm_method: ``"correlation"`` or ``"cosine"`` (ignored for CKA).
        teacher_subsamples: average each teacher RDM over this many random feature subsamples
            (the paper's 10), with ``subsample_size`` features each and ``seed``.

    Call :meth:`update` with the same images' activations for both sides (dicts name -> (b, ...)
    arrays, same b), then :meth:`similarity` for the (n_teacher x n_candidate) matrix.
    """

    def __init__(
        self,
        comparison: str = "pearson",
        rdm_method: str = "correlation",
        *,
        teacher_subsamples: int | None = None,
        subsample_size: int | None = None,
        seed: int = 0,
    ) -> None:
        if comparison not in STREAMABLE:
            raise InputError(
                f"comparison {comparison!r} cannot stream (ranks need all pairs at once); "
                f"use one of {STREAMABLE} or the dense path"
            )
        if comparison == "pearson" and rdm_method not in EMBEDDABLE_METHODS:
            raise InputError(
                f"streaming supports RDM methods {EMBEDDABLE_METHODS}, not {rdm_method!r}"
            )
        self.comparison = comparison
        self.rdm_method = rdm_method
        self.teacher_subsamples = teacher_subsamples
        self.subsample_size = subsample_size
        self.seed = seed
        self.n = 0
        self._teacher: dict[str, _LayerStats] = {}
        self._candidate: dict[str, _LayerStats] = {}
        self._subsample: dict[str, torch.Tensor] = {}
        self._cross: torch.Tensor | None = None  # (sum d_t, sum d_c)
        self._gh: torch.Tensor | None = None  # (k_t, k_c) sum_i g_i h_i

    # ------------------------------------------------------------------ batches
    def _embed(self, name: str, x: torch.Tensor, teacher: bool, position: int) -> torch.Tensor:
        if self.comparison == "cka":
            return x
        sub = None
        if teacher and self.teacher_subsamples is not None:
            if name not in self._subsample:
                m = self.subsample_size or default_subsample_size(
                    x.shape[1], self.teacher_subsamples
                )
                self._subsample[name] = subsample_indices(
                    x.shape[1], self.teacher_subsamples, m, self.seed + position, device=x.device
                )
            sub = self._subsample[name]
        return rdm_embedding(x, self.rdm_method, sub)

    def _side(
        self,
        batch: Mapping[str, ArrayLike],
        stats: dict[str, _LayerStats],
        teacher: bool,
        device: torch.device | str | None,
    ) -> list[torch.Tensor]:
        zs = []
        for pos, (name, value) in enumerate(as_layers(batch).items()):
            z = self._embed(name, as_matrix(value, f"layer {name!r}", device=device), teacher, pos)
            if name not in stats:
                if self.n:
                    raise InputError(f"layer {name!r} appeared after the first batch")
                stats[name] = _LayerStats(
                    z.shape[1],
                    torch.zeros(z.shape[1], dtype=ACC_DTYPE, device=z.device),
                    torch.zeros(z.shape[1], z.shape[1], dtype=ACC_DTYPE, device=z.device),
                )
            st = stats[name]
            if z.shape[1] != st.dim:
                raise InputError(f"layer {name!r} changed width: {z.shape[1]} vs {st.dim}")
            st.s += z.sum(dim=0, dtype=ACC_DTYPE)
            g = torch.linalg.vector_norm(z, dim=1, dtype=ACC_DTYPE).square()
            st.g_sum += float(g.sum())
            st.g2_sum += float(g.square().sum())
            st.gram.add_(z.T @ z)
            zs.append(z)
        if len(zs) != len(stats):
            raise InputError("every batch must carry the same layers")
        return zs

    def update(
        self,
        teacher_batch: Mapping[str, ArrayLike],
        candidate_batch: Mapping[str, ArrayLike],
        device: torch.device | str | None = None,
    ) -> None:
        """Add one batch of images (teacher and candidate activations of the same images)."""
        zt = self._side(teacher_batch, self._teacher, True, device)
        zc = self._side(candidate_batch, self._candidate, False, device)
        b = zt[0].shape[0]
        if any(z.shape[0] != b for z in zt + zc):
            raise InputError(
                "teacher and candidate batches hold different numbers of images: "
                f"{[z.shape[0] for z in zt]} vs {[z.shape[0] for z in zc]}"
            )
        dev = zt[0].device
        zc = [z.to(dev) for z in zc]
        at = torch.cat(zt, dim=1)
        ac = torch.cat(zc, dim=1).to(at.dtype)
        if self._cross is None:
            self._cross = torch.zeros(at.shape[1], ac.shape[1], dtype=ACC_DTYPE, device=dev)
            self._gh = torch.zeros(len(zt), len(zc), dtype=ACC_DTYPE, device=dev)
        self._cross.add_(at.T @ ac)
        gt = torch.stack([torch.linalg.vector_norm(z, dim=1, dtype=ACC_DTYPE).square() for z in zt])
        gc = torch.stack([torch.linalg.vector_norm(z, dim=1, dtype=ACC_DTYPE).square() for z in zc])
        assert self._gh is not None
        self._gh += gt @ gc.T
        self.n += b

    # ------------------------------------------------------------------ result
    @property
    def teacher_layers(self) -> tuple[str, ...]:
        return tuple(self._teacher)

    @property
    def candidate_layers(self) -> tuple[str, ...]:
        return tuple(self._candidate)

    def similarity(self) -> torch.Tensor:
        """The (n_teacher x n_candidate) similarity matrix, float64."""
        if self._cross is None or self.n < 3:
            raise InputError(f"need at least 3 images before a similarity, got {self.n}")
        t_stats, c_stats = list(self._teacher.values()), list(self._candidate.values())
        t_off = [0, *accumulate([s.dim for s in t_stats])]
        c_off = [0, *accumulate([s.dim for s in c_stats])]
        out = torch.zeros(len(t_stats), len(c_stats), dtype=ACC_DTYPE)
        if self.comparison == "cka":
            n = self.n
            mu_t = [s.s / n for s in t_stats]
            mu_c = [s.s / n for s in c_stats]
            self_t = [
                _fro(s.gram - n * torch.outer(m, m)) for s, m in zip(t_stats, mu_t, strict=True)
            ]
            self_c = [
                _fro(s.gram - n * torch.outer(m, m)) for s, m in zip(c_stats, mu_c, strict=True)
            ]
            for i in range(len(t_stats)):
                for j in range(len(c_stats)):
                    block = self._cross[t_off[i] : t_off[i + 1], c_off[j] : c_off[j + 1]]
                    cross = _fro(block - n * torch.outer(mu_t[i], mu_c[j])) ** 2
                    denom = self_t[i] * self_c[j]
                    out[i, j] = cross / denom if denom > 0 else 0.0
            return out.clamp_(-1, 1)
        pairs = n_pairs(self.n)

        def moments(s: _LayerStats) -> tuple[float, float]:
            sa = (float(s.s @ s.s) - s.g_sum) / 2
            saa = (_fro(s.gram) ** 2 - s.g2_sum) / 2
            mean = sa / pairs
            return mean, saa / pairs - mean * mean

        mt = [moments(s) for s in t_stats]
        mc = [moments(s) for s in c_stats]
        assert self._gh is not None
        for i in range(len(t_stats)):
            for j in range(len(c_stats)):
                block = self._cross[t_off[i] : t_off[i + 1], c_off[j] : c_off[j + 1]]
                sab = (_fro(block) ** 2 - float(self._gh[i, j])) / 2
                cov = sab / pairs - mt[i][0] * mc[j][0]
                var = mt[i][1] * mc[j][1]
                tol = (torch.finfo(ACC_DTYPE).eps * 64) ** 2
                out[i, j] = cov / math.sqrt(var) if mt[i][1] > tol and mc[j][1] > tol else 0.0
        return out.clamp_(-1, 1)


def _fro(m: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(m, ord="fro"))


# --------------------------------------------------------------------------- automatic choice


def available_memory(device: torch.device | str | None = None) -> int:
    """Bytes free on ``device`` (CUDA: driver's free memory; CPU: MemAvailable)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def dense_bytes(n: int, k_total: int, itemsize: int = 4) -> int:
    """Working memory of the dense path: all RDM triangles plus one panel and compare chunks."""
    return k_total * n_pairs(n) * itemsize + 256 * 2**20 + k_total * (1 << 22) * 8 * 2


def streaming_bytes(dims_teacher: list[int], dims_candidate: list[int]) -> int:
    """Accumulator memory of the streaming path (float64), independent of the image count."""
    sq = sum(d * d for d in dims_teacher) + sum(d * d for d in dims_candidate)
    return 8 * (sq + sum(dims_teacher) * sum(dims_candidate))


def compare_features(
    teacher: ArrayLike | Mapping[str, ArrayLike],
    candidate: ArrayLike | Mapping[str, ArrayLike],
    *,
    rdm_method: str = "correlation",
    comparison: str = "pearson",
    teacher_subsamples: int | None = None,
    subsample_size: int | None = None,
    seed: int = 0,
    groups: ArrayLike | None = None,
    strategy: str = "auto",
    memory_limit: int | None = None,
    batch_size: int = 2048,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, str]:
    """Teacher x candidate similarity from activations, choosing dense or streaming.

    ``strategy="auto"`` uses dense RDMs when they fit in ``memory_limit`` (default: half the
    free memory of the device) and the streaming identity otherwise, or when it is cheaper.
    Grouped comparisons always average groups first (cheap) and then go dense.

    Returns ``(similarity, strategy_used)``.
    """
    t_layers, c_layers = as_layers(teacher, "teacher"), as_layers(candidate, "candidate")
    t_mats = {k: as_matrix(v, f"teacher layer {k!r}", device=device) for k, v in t_layers.items()}
    c_mats = {k: as_matrix(v, f"candidate layer {k!r}", device=device) for k, v in c_layers.items()}
    n_t = {m.shape[0] for m in t_mats.values()}
    n_c = {m.shape[0] for m in c_mats.values()}
    if len(n_t | n_c) != 1:
        raise InputError(
            f"teacher activations cover {sorted(n_t)} images but candidate activations "
            f"{sorted(n_c)}; both must come from the same probe images"
        )
    n = n_t.pop()
    if strategy not in ("auto", "dense", "stream"):
        raise InputError(f"strategy must be 'auto', 'dense' or 'stream', not {strategy!r}")
    if groups is not None or comparison not in STREAMABLE:
        if strategy == "stream":
            raise InputError("grouped RDMs and rank comparisons use the dense path only")
        strategy = "dense"
    if strategy == "auto":
        limit = memory_limit if memory_limit is not None else available_memory(device) // 2
        dims_t = [
            _embedded_dim(m.shape[1], teacher_subsamples, subsample_size, comparison)
            for m in t_mats.values()
        ]
        dims_c = [m.shape[1] for m in c_mats.values()]
        k_total = len(dims_t) + len(dims_c)
        dense_mem = dense_bytes(n, k_total)
        stream_mem = streaming_bytes(dims_t, dims_c)
        dense_cost = n * n * (sum(dims_t) + sum(dims_c)) / 2
        stream_cost = n * (sum(d * d for d in dims_t + dims_c) + sum(dims_t) * sum(dims_c))
        fits_dense, fits_stream = dense_mem <= limit, stream_mem <= limit
        if fits_dense and (not fits_stream or dense_cost <= stream_cost):
            strategy = "dense"
        elif fits_stream:
            strategy = "stream"
        else:
            raise InputError(
                f"neither path fits in {limit / 2**30:.1f} GiB for {n} images: dense RDMs need "
                f"{dense_mem / 2**30:.1f} GiB, streaming {stream_mem / 2**30:.1f} GiB; group "
                "the images, use fewer probe images, or subsample features"
            )
    if strategy == "dense":
        if comparison == "cka":
            return cka(t_mats, c_mats, groups=groups), "dense"
        rt = compute_rdms(
            t_mats,
            rdm_method,
            groups=groups,
            subsamples=teacher_subsamples,
            subsample_size=subsample_size,
            seed=seed,
        )
        rc = compute_rdms(c_mats, rdm_method, groups=groups)
        return compare(rt, rc, comparison), "dense"
    acc = StreamingSimilarity(
        comparison,
        rdm_method,
        teacher_subsamples=teacher_subsamples,
        subsample_size=subsample_size,
        seed=seed,
    )
    for start in range(0, n, batch_size):
        sl = slice(start, min(n, start + batch_size))
        acc.update({k: v[sl] for k, v in t_mats.items()}, {k: v[sl] for k, v in c_mats.items()})
    return acc.similarity(), "stream"


def _embedded_dim(d: int, k: int | None, m: int | None, comparison: str) -> int:
    if k is None or comparison == "cka":
        return d
    return k * min(d, m or default_subsample_size(d, k))


def stream_batches(
    batches: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]], **kwargs: Any
) -> StreamingSimilarity:
    """Feed an iterable of ``(teacher_batch, candidate_batch)`` pairs into an accumulator."""
    acc = StreamingSimilarity(**kwargs)
    for t, c in batches:
        acc.update(t, c)
    return acc
