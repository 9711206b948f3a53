"""Exact teacher x candidate similarities for probe sets too large for n x n matrices.

For correlation and cosine RDMs, ``RDM = 1 - Z Z^T`` with a row embedding Z, and the Pearson
correlation of two RDMs' upper triangles only needs five sums over pairs i < j::

    sum a_ij        = (||sum_i z_i||^2 - sum_i g_i) / 2            g_i = ||z_i||^2
    sum a_ij^2      = (||Z^T Z||_F^2 - sum_i g_i^2) / 2
    sum a_ij b_ij   = (||Z^T W||_F^2 - sum_i g_i h_i) / 2

(``corr(1 - a, 1 - b) = corr(a, b)``). Every term is a sum over images, so it accumulates over
image batches in float64 with memory that depends on the feature counts, never on n. Linear
CKA uses the same accumulators on raw features with column centring applied at the end.

The accumulators (``d x d`` Grams and ``d_t x d_c`` cross products) still grow with the squared
feature counts: 1.8 GB for 3 x 3 layers of 4,000 features. Only their Frobenius norms are
needed, and a norm is a sum over blocks, so :func:`plan_blocks` cuts them into blocks (Grams:
only blocks on or above the diagonal, the rest counted twice) and packs the blocks into passes
within ``max_memory``; each pass goes over the same batches again and keeps one norm per block.
The result is the same whatever the bound; the cost is re-reading (or re-computing) the batches.

:func:`compare_features` picks this path automatically when the dense RDMs would not fit in the
memory budget (and is cheaper), and otherwise computes dense RDMs; both agree to float
precision. :class:`StreamingSimilarity` takes batches directly, e.g. from a forward pass over
the probe images, so activations of all images never have to be held at once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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
    g_sum: float = 0.0  # sum ||z_i||^2
    g2_sum: float = 0.0  # sum ||z_i||^4
    fro2: float = 0.0  # ||Z^T Z||_F^2 (CKA: of the column-centred Gram), summed over blocks


@dataclass
class _Block:
    """One float64 accumulator: rows x cols of ``Z_left^T Z_right`` for two layers, counted
    ``weight`` times in the Frobenius norm (2 for an off-diagonal block of a symmetric Gram)."""

    left: tuple[bool, int]  # (teacher side?, layer index)
    right: tuple[bool, int]
    rows: slice
    cols: slice
    weight: float = 1.0
    acc: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return (self.rows.stop - self.rows.start) * (self.cols.stop - self.cols.start)


_GRAM_CHUNK = 1024  # features per Gram block: off-diagonal blocks count twice (~40% less work)


def default_memory_budget(device: torch.device | str | None = None) -> int:
    """A quarter of the free memory of ``device`` (at least 256 MiB): the default bound on the
    streaming accumulators."""
    return max(256 * 2**20, available_memory(device) // 4)


def plan_blocks(
    dims_teacher: list[int], dims_candidate: list[int], max_memory: int
) -> list[list[_Block]]:
    """Split the accumulators into blocks and pack them into passes within ``max_memory`` bytes.

    Each layer's Gram is cut into feature chunks (only blocks on or above the diagonal are
    kept); each teacher x candidate cross matrix into row slices small enough to fit. Passes
    are filled in turn (candidate Grams, then per teacher layer its Gram and cross matrices);
    a pass holds its blocks' float64 sums plus the float32 product of one block. Raises InputError when not even one row of a cross matrix
    fits.
    """
    widest = max(dims_teacher + dims_candidate)
    if max_memory < 12 * widest:
        raise InputError(
            f"max_memory {max_memory:,} bytes cannot hold one row of the accumulators "
            f"({12 * widest:,} bytes for {widest} features); raise it"
        )
    # Largest block (elements): small enough that several share a pass, never below one row.
    cap = max_memory // 48 if max_memory // 48 >= widest else max_memory // 12

    def gram(teacher: bool, li: int, d: int) -> list[_Block]:
        chunk = max(1, min(d, _GRAM_CHUNK, math.isqrt(cap)))
        cuts = [slice(a, min(d, a + chunk)) for a in range(0, d, chunk)]
        side = (teacher, li)
        return [
            _Block(side, side, ra, rb, 1.0 if ra == rb else 2.0)
            for a, ra in enumerate(cuts)
            for rb in cuts[a:]
        ]

    # In an order that keeps each pass to few layers (later passes embed only those).
    blocks = [b for j, dc in enumerate(dims_candidate) for b in gram(False, j, dc)]
    for i, dt in enumerate(dims_teacher):
        blocks += gram(True, i, dt)
        for j, dc in enumerate(dims_candidate):
            step = max(1, min(dt, cap // dc))
            blocks += [
                _Block((True, i), (False, j), slice(a, min(dt, a + step)), slice(0, dc))
                for a in range(0, dt, step)
            ]
    passes: list[list[_Block]] = []
    total = largest = 0
    for blk in blocks:  # next fit
        if passes and 8 * (total + blk.size) + 4 * max(largest, blk.size) <= max_memory:
            passes[-1].append(blk)
            total, largest = total + blk.size, max(largest, blk.size)
        else:
            passes.append([blk])
            total = largest = blk.size
    return passes


class StreamingSimilarity:
    """Accumulates teacher and candidate activations batch by batch; exact at the end.

    Args:
        comparison: ``"pearson"`` (Pearson of RDM upper triangles) or ``"cka"`` (linear CKA).
        rdm_method: ``"correlation"`` or ``"cosine"`` (ignored for CKA).
        teacher_subsamples: average each teacher RDM over this many random feature subsamples
            (the paper's 10), with ``subsample_size`` features each and ``seed``.
        max_memory: bound in bytes on the float64 accumulators (default: a quarter of the free
            memory of the device). They grow with the squared feature counts, never with the
            number of images; when they do not fit at once they are computed in several passes
            over the same batches, a bounded part in each (exact either way).

    Call :meth:`update` with the same images' activations for both sides (dicts name -> (b, ...)
    arrays, same b), then :meth:`similarity` for the (n_teacher x n_candidate) matrix. When
    the accumulators may exceed ``max_memory``, feed the batches once per pass::

        for _ in acc.passes():          # one pass when everything fits
            for t, c in batches():      # the same images every pass (any order)
                acc.update(t, c)
        sim = acc.similarity()

    Batches themselves add about 3 x (batch size) x (all features) x 4 bytes.
    """

    def __init__(
        self,
        comparison: str = "pearson",
        rdm_method: str = "correlation",
        *,
        teacher_subsamples: int | None = None,
        subsample_size: int | None = None,
        seed: int = 0,
        max_memory: int | None = None,
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
        if max_memory is not None and max_memory <= 0:
            raise InputError(f"max_memory must be a positive number of bytes, got {max_memory}")
        self.comparison = comparison
        self.rdm_method = rdm_method
        self.teacher_subsamples = teacher_subsamples
        self.subsample_size = subsample_size
        self.seed = seed
        self.max_memory = max_memory
        self.n = 0
        self._teacher: dict[str, _LayerStats] = {}
        self._candidate: dict[str, _LayerStats] = {}
        self._subsample: dict[str, torch.Tensor] = {}
        self._cross: torch.Tensor | None = None  # (k_t, k_c) ||Z_t^T Z_c||_F^2 over blocks
        self._gh: torch.Tensor | None = None  # (k_t, k_c) sum_i g_i h_i
        self._plan: list[list[_Block]] | None = None
        self._pass = 0  # index of the pass being fed
        self._pass_n = 0  # images seen in this pass
        self._pass_s: list[torch.Tensor] = []  # column sums per layer in this pass (same data?)
        self._buffer: torch.Tensor | None = None  # one block's product, reused
        self._multipass = False  # passes() drives the feeding
        self._finished = False

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
        wanted: set[tuple[bool, int]] | None = None,
    ) -> list[torch.Tensor | None]:
        """Embedded activations of a batch's layers; None for layers outside ``wanted``."""
        zs: list[torch.Tensor | None] = []
        for pos, (name, value) in enumerate(as_layers(batch).items()):
            if wanted is not None and (teacher, pos) not in wanted:
                zs.append(None)
                continue
            z = self._embed(name, as_matrix(value, f"layer {name!r}", device=device), teacher, pos)
            if name not in stats:
                if self.n or self._pass:
                    raise InputError(f"layer {name!r} appeared after the first batch")
                stats[name] = _LayerStats(
                    z.shape[1], torch.zeros(z.shape[1], dtype=ACC_DTYPE, device=z.device)
                )
            if z.shape[1] != stats[name].dim:
                raise InputError(f"layer {name!r} changed width: {z.shape[1]} vs {stats[name].dim}")
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
        if self._finished:
            raise InputError("the similarity was already computed; start a new accumulator")
        wanted = self._wanted()
        zt = self._side(teacher_batch, self._teacher, True, device, wanted)
        zc = self._side(candidate_batch, self._candidate, False, device, wanted)
        present = [z for z in zt + zc if z is not None]
        b = present[0].shape[0]
        if any(z.shape[0] != b for z in present):
            raise InputError(
                "teacher and candidate batches hold different numbers of images: "
                f"{[z.shape[0] for z in zt if z is not None]} vs "
                f"{[z.shape[0] for z in zc if z is not None]}"
            )
        dev = present[0].device
        zc = [None if z is None else z.to(dev) for z in zc]
        if self._plan is None:
            self._start(zt, zc, dev)  # type: ignore[arg-type]
        if self._pass == 0:
            g = [torch.linalg.vector_norm(z, dim=1, dtype=ACC_DTYPE).square() for z in present]
            for st, z, gi in zip(self._stats(), zt + zc, g, strict=True):
                assert z is not None
                st.s += z.sum(dim=0, dtype=ACC_DTYPE)
                st.g_sum += float(gi.sum())
                st.g2_sum += float(gi.square().sum())
            assert self._gh is not None
            self._gh += torch.stack(g[: len(zt)]) @ torch.stack(g[len(zt) :]).T
            self.n += b
        else:
            for k, z in enumerate(zt + zc):
                if z is not None:
                    self._pass_s[k] += z.sum(dim=0, dtype=ACC_DTYPE)
        self._pass_n += b
        sides = {True: zt, False: zc}
        assert self._plan is not None
        for blk in self._plan[self._pass]:
            zl, zr = sides[blk.left[0]][blk.left[1]], sides[blk.right[0]][blk.right[1]]
            assert blk.acc is not None and zl is not None and zr is not None
            left, right = zl[:, blk.rows], zr[:, blk.cols]
            right = right.to(left.dtype)
            size = blk.size
            if self._buffer is None or self._buffer.dtype != left.dtype:
                largest = max(b.size for b in self._plan[self._pass])
                self._buffer = torch.empty(largest, dtype=left.dtype, device=left.device)
            product = self._buffer[:size].view(left.shape[1], right.shape[1])
            blk.acc.add_(torch.mm(left.T, right, out=product))  # no fresh product per batch

    def _wanted(self) -> set[tuple[bool, int]] | None:
        """Layers this pass needs (None: all; the first pass gathers every layer's sums)."""
        if self._plan is None or self._pass == 0:
            return None
        return {side for blk in self._plan[self._pass] for side in (blk.left, blk.right)}

    def _stats(self) -> list[_LayerStats]:
        return [*self._teacher.values(), *self._candidate.values()]

    def _start(self, zt: list[torch.Tensor], zc: list[torch.Tensor], dev: torch.device) -> None:
        """Plan the passes from the first batch's layer widths."""
        budget = self.max_memory if self.max_memory is not None else default_memory_budget(dev)
        self._plan = plan_blocks([z.shape[1] for z in zt], [z.shape[1] for z in zc], budget)
        if len(self._plan) > 1 and not self._multipass:
            need = streaming_bytes([z.shape[1] for z in zt], [z.shape[1] for z in zc])
            raise InputError(
                f"the accumulators need {need / 2**30:.2f} GiB at once but max_memory is "
                f"{budget / 2**30:.2f} GiB: feed the batches once per pass "
                "(`for _ in acc.passes(): ...`) or raise max_memory"
            )
        self._cross = torch.zeros(len(zt), len(zc), dtype=ACC_DTYPE)
        self._gh = torch.zeros(len(zt), len(zc), dtype=ACC_DTYPE, device=dev)
        self._allocate(dev)

    def _allocate(self, dev: torch.device) -> None:
        assert self._plan is not None
        self._buffer = None  # the product buffer is sized to the pass's largest block
        for blk in self._plan[self._pass]:
            shape = (blk.rows.stop - blk.rows.start, blk.cols.stop - blk.cols.start)
            blk.acc = torch.zeros(shape, dtype=ACC_DTYPE, device=dev)
        self._pass_n = 0
        self._pass_s = [torch.zeros_like(st.s) for st in self._stats()] if self._pass else []

    def _end_pass(self) -> None:
        """Check the pass saw the same images, fold its blocks into Frobenius norms, free them."""
        if self._plan is None or self.n < 3:
            raise InputError(f"need at least 3 images before a similarity, got {self.n}")
        if self._pass > 0:  # sums over images: the order may change, the values may not
            wanted = self._wanted() or set()
            keys = [(True, i) for i in range(len(self._teacher))]
            keys += [(False, j) for j in range(len(self._candidate))]
            same = self._pass_n == self.n and all(
                float((a - st.s).norm()) <= 1e-6 * float(st.s.norm()) + 1e-9 * self.n
                for a, st, key in zip(self._pass_s, self._stats(), keys, strict=True)
                if key in wanted
            )
            if not same:
                raise InputError(
                    f"pass {self._pass + 1} saw other activations than pass 1 ({self._pass_n} vs "
                    f"{self.n} images, or other values): every pass must feed the same images "
                    "(no augmentation or dropout; the order may differ)"
                )
        t_stats, c_stats = list(self._teacher.values()), list(self._candidate.values())
        centre = self.comparison == "cka"
        assert self._cross is not None
        for blk in self._plan[self._pass]:
            assert blk.acc is not None
            acc = blk.acc
            left = (t_stats if blk.left[0] else c_stats)[blk.left[1]]
            right = (t_stats if blk.right[0] else c_stats)[blk.right[1]]
            if centre:
                acc = acc.sub_(torch.outer(left.s[blk.rows], right.s[blk.cols]).div_(self.n))
            value = blk.weight * _fro(acc) ** 2
            if blk.left[0] != blk.right[0]:
                self._cross[blk.left[1], blk.right[1]] += value
            else:
                left.fro2 += value
            blk.acc = None
        self._buffer = None
        self._pass += 1
        if self._pass < len(self._plan):
            self._allocate(self._gh.device if self._gh is not None else torch.device("cpu"))

    def passes(self) -> Iterator[int]:
        """Yield once per pass over the batches the bounded accumulators need (the count is
        known after the first batch); feed the same images in each (any order)."""
        if self.n or self._pass or self._plan is not None:
            raise InputError("call passes() before the first update()")
        self._multipass = True
        while True:
            yield self._pass
            self._end_pass()
            assert self._plan is not None
            if self._pass >= len(self._plan):
                self._finished = True
                return

    @property
    def n_passes(self) -> int | None:
        """Passes over the batches this accumulator needs (None before the first batch)."""
        return None if self._plan is None else len(self._plan)

    # ------------------------------------------------------------------ result
    @property
    def teacher_layers(self) -> tuple[str, ...]:
        return tuple(self._teacher)

    @property
    def candidate_layers(self) -> tuple[str, ...]:
        return tuple(self._candidate)

    def similarity(self) -> torch.Tensor:
        """The (n_teacher x n_candidate) similarity matrix, float64."""
        if self._plan is None or self.n < 3:
            raise InputError(f"need at least 3 images before a similarity, got {self.n}")
        if not self._finished:
            if self._multipass:
                raise InputError("similarity() before the last pass ended; finish passes()")
            self._end_pass()  # one-pass use: the single pass ends here
            self._finished = True
        t_stats, c_stats = list(self._teacher.values()), list(self._candidate.values())
        assert self._cross is not None and self._gh is not None
        cross = self._cross
        out = torch.zeros(len(t_stats), len(c_stats), dtype=ACC_DTYPE)
        if self.comparison == "cka":
            for i, st in enumerate(t_stats):
                for j, sc in enumerate(c_stats):
                    denom = math.sqrt(st.fro2 * sc.fro2)
                    out[i, j] = float(cross[i, j]) / denom if denom > 0 else 0.0
            return out.clamp_(-1, 1)
        pairs = n_pairs(self.n)

        def moments(s: _LayerStats) -> tuple[float, float]:
            sa = (float(s.s @ s.s) - s.g_sum) / 2
            saa = (s.fro2 - s.g2_sum) / 2
            mean = sa / pairs
            return mean, saa / pairs - mean * mean

        mt = [moments(s) for s in t_stats]
        mc = [moments(s) for s in c_stats]
        gh = self._gh.cpu()
        tol = (torch.finfo(ACC_DTYPE).eps * 64) ** 2
        for i in range(len(t_stats)):
            for j in range(len(c_stats)):
                sab = (float(cross[i, j]) - float(gh[i, j])) / 2
                cov = sab / pairs - mt[i][0] * mc[j][0]
                var = mt[i][1] * mc[j][1]
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
    """Accumulator memory of the streaming path in one pass (float64), independent of the
    image count; a ``max_memory`` below it splits the work into passes."""
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
    free memory of the device) and the streaming identity otherwise, or when it is cheaper; the
    streaming accumulators then stay within ``memory_limit`` too (in several passes over the
    activations if they must). Grouped comparisons always average groups first (cheap) and then
    go dense.

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
    limit = memory_limit if memory_limit is not None else available_memory(device) // 2
    if strategy == "auto":
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
        fits_dense = dense_mem <= limit
        fits_stream = 12 * max(dims_t + dims_c) <= limit  # passes bound the rest
        if not fits_stream:
            stream_mem = 12 * max(dims_t + dims_c)
        if fits_dense and (not fits_stream or dense_cost <= stream_cost):
            strategy = "dense"
        elif fits_stream:
            strategy = "stream"
        else:
            raise InputError(
                f"neither path fits in {limit / 2**30:.1f} GiB for {n} images: dense RDMs need "
                f"{dense_mem / 2**30:.1f} GiB, streaming at least {stream_mem / 2**30:.1f} GiB; group "
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

    def batches() -> Iterator[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
        for start in range(0, n, batch_size):
            sl = slice(start, min(n, start + batch_size))
            yield {k: v[sl] for k, v in t_mats.items()}, {k: v[sl] for k, v in c_mats.items()}

    acc = stream_batches(
        batches,
        comparison=comparison,
        rdm_method=rdm_method,
        teacher_subsamples=teacher_subsamples,
        subsample_size=subsample_size,
        seed=seed,
        max_memory=limit,
    )
    return acc.similarity(), "stream"


def _embedded_dim(d: int, k: int | None, m: int | None, comparison: str) -> int:
    if k is None or comparison == "cka":
        return d
    return k * min(d, m or default_subsample_size(d, k))


Batches = Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]


def stream_batches(batches: Batches | Callable[[], Batches], **kwargs: Any) -> StreamingSimilarity:
    """Feed ``(teacher_batch, candidate_batch)`` pairs into a :class:`StreamingSimilarity`
    (keyword arguments: its own, e.g. ``max_memory``), once per pass it needs.

    ``batches`` is a function returning a fresh iterable of pairs (e.g. a forward pass over
    the probe images, which then runs once per pass) or a re-iterable sequence; a one-shot
    iterator works when one pass suffices.
    """
    acc = StreamingSimilarity(**kwargs)
    if callable(batches):
        source: Callable[[], Batches] = batches
    elif isinstance(batches, Sequence):
        source = lambda: batches  # noqa: E731
    else:  # one-shot: a single pass (update() says so if the budget needs more)
        for t, c in batches:
            acc.update(t, c)
        return acc
    for _ in acc.passes():
        for t, c in source():
            acc.update(t, c)
    return acc
