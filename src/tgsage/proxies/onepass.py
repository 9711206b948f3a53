"""One train-mode forward and the few backward passes that every data-based proxy shares.

Most zero-cost proxies are cheap functions of quantities that one pass of the network on one
minibatch already produces: the ReLU codes (naswot), every feature map (MeCo), the block outputs
(AZ-NAS expressivity, progressivity, trainability), the input Jacobian (jacob_cov) and the
cross-entropy gradient of every conv/linear weight (grad_norm, snip, and ZiCo's two half-batch
gradients). :func:`train_pass` computes, from ONE train-mode forward (BN on batch statistics,
as the proxies' reference code), only what the requested *needs* ask for:

- ``kernel``: the naswot kernel, built in the ReLU hooks as the forward runs;
- ``meco``: per image, the sum over distinct feature maps of the smallest eigenvalue of the
  channel correlation matrix (and the ``meco_opt`` variant on 8 sampled channels);
- ``blocks``: the AZ-NAS block features, their expressivity (computed in the forward);
- ``trainability``: one backward through each block with a random sign cotangent;
- ``ce``: one backward of the mean cross-entropy; each conv/linear weight gradient is
  assembled per half of the batch from the layer's input and output gradient, so ZiCo's two
  gradients cost nothing beyond the ordinary backward and sum to grad_norm's gradient;
- ``jacobian``: one backward of the summed logits to the input.

Inside :func:`sharing_passes` (``compute_proxies`` opens it) the first proxy that asks runs the
pass for the union of every requested proxy's needs and the rest read the cached result, so a
whole score set costs one forward and at most three backward passes. Every value is the same
whether a proxy runs alone or shares the pass (random draws come from generators seeded by one
draw of the caller's torch RNG; the pass computes each need the same way whatever else it
computes).
"""

from __future__ import annotations

import itertools
import math
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from tgsage.errors import InputError
from tgsage.proxies.base import logits_of, preserved, requiring_grad, scored_layers

#: Everything :func:`train_pass` can compute.
TRAIN_NEEDS = frozenset({"kernel", "meco", "blocks", "trainability", "ce", "jacobian"})
#: Which needs each registered proxy has (proxies not listed do not use the shared pass).
PROXY_NEEDS: dict[str, frozenset[str]] = {}
RELU_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)
_F32_EXACT = 2**24  # +-1 dot products of up to this many units are exact in float32
MECO_OPT_CHANNELS = 8
#: MeCo scores the first image of the minibatch, as the paper (one image, one forward).
MECO_IMAGES = 1
T = TypeVar("T")


def declare_needs(proxy: str, needs: Iterable[str]) -> None:
    """Record that ``proxy`` reads ``needs`` from the shared pass (see :data:`TRAIN_NEEDS`)."""
    needs = frozenset(needs)
    unknown = needs - TRAIN_NEEDS - {"fisher"}
    if unknown:
        raise ValueError(f"unknown pass needs {sorted(unknown)}")
    PROXY_NEEDS[proxy] = needs


@dataclass
class LayerGrad:
    """One conv/linear weight and the cross-entropy gradient of the batch's mean loss.

    ``halves``: the same gradient split by which half of the batch used the weight (they sum
    to ``grad``); None when the layer is not a plain ``nn.Conv*`` / ``nn.Linear`` call on the
    whole batch (then only the total is known)."""

    weight: torch.Tensor
    grad: torch.Tensor | None
    halves: tuple[torch.Tensor, torch.Tensor] | None


@dataclass
class TrainPass:
    """What one train-mode pass measured (each field is None unless its need was asked)."""

    needs: frozenset[str]
    logits: torch.Tensor
    kernel: torch.Tensor | None = None
    meco: float | None = None
    meco_opt: float | None = None
    expressivity: list[float] | None = None
    trainability: list[float] | None = None
    layer_grads: list[LayerGrad] | None = None
    jacobian: torch.Tensor | None = None
    seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


_SHARED: ContextVar[tuple[frozenset[str], dict[tuple, object]] | None] = ContextVar(
    "tgsage_proxy_passes", default=None
)


@contextmanager
def sharing_passes(needs: Iterable[str] = (), labels: torch.Tensor | None = None) -> Iterator[None]:
    """Inside, proxies scoring the same (model, images) objects share one pass, run for
    ``needs`` plus whatever the first caller asks; ``labels`` serve the cross-entropy need
    even when the first caller passes none."""
    token = _SHARED.set((frozenset(needs) & TRAIN_NEEDS, {"labels": labels}))
    try:
        yield
    finally:
        _SHARED.reset(token)


def shared_train_pass(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    needs: Iterable[str],
) -> TrainPass:
    """The pass for ``needs`` (cached inside :func:`sharing_passes`)."""
    needs = frozenset(needs)
    ctx = _SHARED.get()
    key = ("train", id(model), id(images))
    if ctx is not None:
        plan, cache = ctx
        hit = cache.get(key)
        if isinstance(hit, TrainPass):
            if needs <= hit.needs:
                return hit
            needs = needs | hit.needs
        needs = needs | plan
        if labels is None:
            labels = cache["labels"]  # type: ignore[assignment]
        if labels is None:
            needs = needs - {"ce"}
    result = train_pass(model, images, labels, needs)
    if ctx is not None:
        ctx[1][key] = result
    return result


def shared_value(kind: str, model: nn.Module, images: torch.Tensor, compute: Callable[[], T]) -> T:
    """``compute()`` once per (kind, model, images) inside :func:`sharing_passes`."""
    ctx = _SHARED.get()
    if ctx is None:
        return compute()
    key = (kind, id(model), id(images))
    if key not in ctx[1]:
        ctx[1][key] = compute()
    return ctx[1][key]  # type: ignore[return-value]


def _draw_seed() -> int:
    """One draw of the caller's torch RNG: seeds every random part of a pass."""
    return int(torch.randint(0, 2**62, (1,)).item())


def check_labels(labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Labels as int64 on the logits' device, checked against the number of outputs (an
    out-of-range label is an obscure error on CPU and a device assert on CUDA)."""
    if labels.shape != logits.shape[:1]:
        raise InputError(
            f"labels have shape {tuple(labels.shape)}, expected ({logits.shape[0]},): one label "
            "per image"
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise InputError(f"labels are {labels.dtype}; pass integer class indices")
    labels = labels.to(logits.device, torch.int64)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
        raise InputError(
            f"labels span [{int(labels.min())}, {int(labels.max())}] but the model has "
            f"{logits.shape[1]} outputs; build it with num_classes > the largest label"
        )
    return labels


# ----- the naswot kernel ------------------------------------------------------------------


def _add_codes(kernel: torch.Tensor, output: torch.Tensor) -> None:
    """``K += C C^T + (1 - C)(1 - C)^T`` for the ReLU's on/off codes, as one product:
    with ``s = 2c - 1``, ``s_i . s_j = U - 2 Ham``, so that term is ``(U + s s^T) / 2``."""
    n = kernel.shape[0]
    codes = output.detach().reshape(n, -1) > 0
    units = codes.shape[1]
    dtype = torch.float32 if units < _F32_EXACT else torch.float64
    s = codes.to(dtype).mul_(2).sub_(1)
    kernel.add_((s @ s.T).to(torch.float64).add_(units).div_(2).to(kernel.device))


# ----- MeCo -------------------------------------------------------------------------------


def _centred_moments(feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(Z Z^T, mean)`` per image of an (N, C, H, W) map with ``Z`` its channels (rows of
    H*W values) centred, accumulated in float32: four tensor ops, the rest happens on the
    small (C, C) matrices."""
    n, c = feature.shape[:2]
    x = feature.detach().reshape(n, c, -1).float()
    mean = x.mean(dim=2, keepdim=True)
    z = x - mean
    return z @ z.transpose(1, 2), mean.squeeze(2), x.shape[2]


def _correlation(cov: torch.Tensor, mean: torch.Tensor, positions: int) -> torch.Tensor:
    """Pearson correlation (float64) from centred products and means (batched over leading
    dims). A channel constant up to float32 round-off (its spread below 1e-5 of its values)
    has no correlation: its row and column are 0, as ``torch.corrcoef``'s NaNs set to 0 in
    MeCo's reference code."""
    cov = cov.to(torch.float64)
    spread = torch.diagonal(cov, dim1=-2, dim2=-1).clamp(min=0.0)
    raw = spread + positions * mean.to(torch.float64) ** 2
    varies = spread > 1e-10 * raw
    inv = torch.where(varies, spread.clamp(min=1e-300).rsqrt(), 0.0)
    corr = (cov * inv[..., :, None] * inv[..., None, :]).clamp_(-1.0, 1.0)
    return torch.nan_to_num_(corr, nan=0.0, posinf=0.0, neginf=0.0)


def channel_correlation(feature: torch.Tensor) -> torch.Tensor:
    """Per image, the (C, C) Pearson correlation of the channels of an (N, C, H, W) map (each
    channel's H*W values a variable), float64; constant channels have zero rows (see
    :func:`_correlation`)."""
    return _correlation(*_centred_moments(feature))


def min_corr_eigenvalues(feature: torch.Tensor) -> torch.Tensor:
    """Per image, the smallest eigenvalue of :func:`channel_correlation` (float64)."""
    return torch.linalg.eigvalsh(channel_correlation(feature))[:, 0]


class _MecoHooks:
    """Forward hooks on every module: each distinct 4-D output (a tensor object and its
    in-place version, so containers that return a child's output count once, and an in-place
    ReLU's output counts apart from its input) adds the smallest correlation eigenvalue of
    the first :data:`MECO_IMAGES` images; ``meco_opt`` uses 8 seeded random channels, times
    C / 8. The hooks keep only each map's small moment matrices; correlations and
    eigenvalues are computed at the end, one batch per channel count."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = min(n, MECO_IMAGES)
        self.maps: list[tuple[torch.Tensor, torch.Tensor, int, torch.Tensor | None]] = []
        # id -> (weak reference, in-place version): a map seen before is the same live object
        # at the same version (weak, so no activation is kept alive beyond its use)
        self.seen: dict[int, tuple[weakref.ref, int]] = {}
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, _module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, tuple | list):
            output = output[0] if output else None
        if not isinstance(output, torch.Tensor) or output.ndim != 4 or output.shape[0] == 0:
            return
        before = self.seen.get(id(output))
        if before is not None and before[0]() is output and before[1] == output._version:
            return
        self.seen[id(output)] = (weakref.ref(output), output._version)
        c = output.shape[1]
        pick = None
        if c > MECO_OPT_CHANNELS:
            pick = torch.randperm(c, generator=self.gen)[:MECO_OPT_CHANNELS].sort().values
        with torch.no_grad():
            self.maps.append((*_centred_moments(output[: self.n]), pick))

    def scores(self) -> tuple[float, float]:
        """(meco, meco_opt): per image sums, averaged over the scored images."""
        meco = torch.zeros(self.n, dtype=torch.float64)
        opt = torch.zeros(self.n, dtype=torch.float64)
        groups: dict[tuple[int, int], list] = {}
        for cov, mean, positions, pick in self.maps:
            groups.setdefault((cov.shape[-1], positions), []).append((cov, mean, pick))
        for (c, positions), group in groups.items():
            corr = _correlation(
                torch.stack([g[0] for g in group]), torch.stack([g[1] for g in group]), positions
            )  # (maps, N, C, C)
            meco += torch.linalg.eigvalsh(corr)[..., 0].sum(dim=0).cpu()
            if c > MECO_OPT_CHANNELS:
                idx = torch.stack([g[2] for g in group]).to(corr.device)  # (maps, 8)
                rows = idx[:, None, :, None].expand(-1, corr.shape[1], -1, c)
                sub = corr.gather(2, rows)
                cols = idx[:, None, None, :].expand(-1, corr.shape[1], MECO_OPT_CHANNELS, -1)
                sub = sub.gather(3, cols)
                opt += torch.linalg.eigvalsh(sub)[..., 0].sum(dim=0).cpu() * (c / MECO_OPT_CHANNELS)
            else:
                opt += torch.linalg.eigvalsh(corr)[..., 0].sum(dim=0).cpu()
        return float(meco.mean()), float(opt.mean())


# ----- AZ-NAS blocks ----------------------------------------------------------------------


def spectral_entropy(feature: torch.Tensor) -> float:
    """AZ-NAS expressivity of one (N, C, H, W) map: the entropy of the normalised eigenvalues
    of the channel covariance over all N*H*W positions. The covariance is accumulated in
    float32 (one centred copy, one product) and decomposed in float64, eigenvalues clipped at 0
    (round-off); NaN when the map is constant (no variance to spread)."""
    c = feature.shape[1]
    x = feature.detach().float().transpose(0, 1).reshape(c, -1)  # a copy unless N == 1
    if x.untyped_storage().data_ptr() == feature.untyped_storage().data_ptr():
        x = x.clone()  # never centre the network's own activation in place
    x.sub_(x.mean(dim=1, keepdim=True))
    sigma = (x @ x.T).to(torch.float64) / x.shape[1]
    s = torch.linalg.eigvalsh(sigma).clamp_(min=0.0)
    total = float(s.sum())
    if not total > 0 or not math.isfinite(total):
        return math.nan
    p = s / total
    return float(-(p * torch.log(p + 1e-8)).sum())


def random_signs(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A tensor of +-1 (Rademacher) shaped like ``like``: the bits of random bytes drawn on
    the CPU from ``generator`` (the same draw on every device; 5x faster than ``bernoulli_``)."""
    n = like.numel()
    raw = torch.randint(0, 256, ((n + 7) // 8,), generator=generator, dtype=torch.uint8)
    bits = (raw[:, None] >> torch.arange(8, dtype=torch.uint8)) & 1
    signs = bits.reshape(-1)[:n].reshape(like.shape).to(like.dtype).mul_(2).sub_(1)
    return signs.to(like.device)


def block_trainability(
    f_in: torch.Tensor, f_out: torch.Tensor, generator: torch.Generator
) -> float:
    """AZ-NAS trainability of one block: ``-s - 1/s + 2`` for the largest singular value ``s``
    of ``E[g_in g_out^T]`` over positions, ``g_out`` random signs and ``g_in`` its backward
    through the block (space-to-depth when the block downsamples); ``-inf`` for an identity
    block (nothing to train), as the reference code."""
    g_out = random_signs(f_out, generator)
    if f_out is f_in:
        return -math.inf
    (g_in,) = torch.autograd.grad(f_out, f_in, g_out, retain_graph=True, allow_unused=True)
    if g_in is None:
        g_in = torch.zeros_like(f_in)
    if g_in.shape == g_out.shape and bool(torch.equal(g_in, g_out)):
        return -math.inf
    if g_in.ndim != 4 or g_out.ndim != 4:
        return math.nan
    if g_in.shape[2:] != g_out.shape[2:]:
        stride = g_in.shape[2] // g_out.shape[2]
        if stride < 1 or g_in.shape[2:] != (g_out.shape[2] * stride, g_out.shape[3] * stride):
            return math.nan
        g_in = F.pixel_unshuffle(g_in, stride)
    # E over positions of g_in g_out^T: one float32 contraction, decomposed in float64
    n, ci, co = g_out.shape[0], g_in.shape[1], g_out.shape[1]
    a = g_in.float().reshape(n, ci, -1)  # views of contiguous maps: no copies
    b = g_out.float().reshape(n, co, -1).transpose(1, 2)
    mat = torch.bmm(a, b).sum(dim=0, dtype=torch.float64) / (n * b.shape[1])
    s = float(torch.linalg.matrix_norm(mat, ord=2))
    return -s - 1.0 / (s + 1e-6) + 2.0


class _BlockInputs:
    """Remembers each module call's output (weakly) and first input so the input of the
    first exposed block (e.g. the stem's output) can be found after the forward. Calls whose
    output has died (every intermediate of a no-grad forward, soon after it is used) are
    dropped as the forward runs, so no activation is kept alive for this (that cost a
    third of a forward)."""

    def __init__(self) -> None:
        self.calls: list[tuple[weakref.ref, torch.Tensor | None]] = []
        self._prune_at = 64

    def __call__(self, _module: nn.Module, inputs: tuple, output: object) -> None:
        if isinstance(output, torch.Tensor):
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            self.calls.append((weakref.ref(output), first))
            if len(self.calls) >= self._prune_at:
                self.calls = [c for c in self.calls if c[0]() is not None]
                self._prune_at = max(64, 2 * len(self.calls))

    def input_of(self, feature: torch.Tensor) -> torch.Tensor | None:
        """The input of the outermost module that produced ``feature`` (hooks of outer modules
        fire last). Pass-through calls (output is input: ``nn.Identity``, e.g. a later NB201
        cell's ``skip_connect`` reading ``feature``) produced nothing and are skipped; taking
        one made ``feature`` its own input, a duplicate first block that zeroed AZ-NAS's
        progressivity and made its trainability -inf for every cell with such an edge."""
        for out, inp in reversed(self.calls):
            if out() is feature and inp is not feature:
                return inp
        return None


def _child_blocks(model: nn.Module) -> tuple[list, list[torch.utils.hooks.RemovableHandle]]:
    """For a network without exposed features: the 4-D outputs of its direct children, in
    call order."""
    found: list[torch.Tensor] = []

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        if isinstance(out, torch.Tensor) and out.ndim == 4:
            found.append(out)

    return found, [m.register_forward_hook(hook) for m in model.children()]


# ----- cross-entropy weight gradients, split by half batch ----------------------------------

_CONV_TYPES = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def is_plain_layer(module: nn.Module) -> bool:
    """A layer whose forward is exactly torch's (so its weight gradient is the textbook
    contraction of its input and output gradient)."""
    for base in (*_CONV_TYPES, nn.Linear):
        if type(module) is base:
            return True
        if isinstance(module, base):
            return type(module).forward is base.forward and (
                getattr(type(module), "_conv_forward", None) is getattr(base, "_conv_forward", None)
            )
    return False


def _weight_grad(module: nn.Module, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """dL/dW of one call of a plain conv/linear layer from its input ``x`` and output
    gradient ``g`` (any subset of the batch)."""
    w = module.weight
    if isinstance(module, nn.Linear):
        return g.reshape(-1, g.shape[-1]).T.to(w.dtype) @ x.reshape(-1, x.shape[-1]).to(w.dtype)
    assert isinstance(module, _CONV_TYPES)
    padding: object = module.padding
    if module.padding_mode != "zeros":
        x = F.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode)
        padding = (0,) * (x.ndim - 2)
    elif padding == "valid":
        padding = (0,) * (x.ndim - 2)
    transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
    output_padding = module.output_padding if transposed else (0,) * (x.ndim - 2)
    _, grad_w, _ = torch.ops.aten.convolution_backward(
        g.contiguous(),
        x,
        w,
        None,
        list(module.stride),
        list(padding),  # type: ignore[call-overload]
        list(module.dilation),
        transposed,
        list(output_padding),
        module.groups,
        [False, True, False],
    )
    return grad_w


def _splittable(module: nn.Module, x: torch.Tensor, n: int) -> bool:
    if not is_plain_layer(module) or x.shape[0] != n:
        return False
    if isinstance(module, _CONV_TYPES) and module.padding == "same":
        return False  # torch may pad asymmetrically; the total gradient comes from autograd
    return True


class _CeHooks:
    """Forward hooks on the scored layers: keep each call's input, and a tensor hook on its
    output that, during the cross-entropy backward only, adds the two half-batch weight
    gradients (tensor hooks see the gradient of the value the layer produced, even if an
    in-place op changes it later)."""

    def __init__(self, layers: list[nn.Module], n: int) -> None:
        self.n = n
        self.active = False
        self.plain = {id(m) for m in layers}
        self.halves: dict[int, list[torch.Tensor]] = {}
        self.unsplit: set[int] = set()

    def __call__(self, module: nn.Module, inputs: tuple, output: object) -> None:
        x = inputs[0] if inputs else None
        if not isinstance(output, torch.Tensor) or not output.requires_grad:
            return
        if not isinstance(x, torch.Tensor) or not _splittable(module, x, self.n):
            self.unsplit.add(id(module))
            return
        x = x.detach()
        h = self.n // 2

        def grad_hook(g: torch.Tensor, module: nn.Module = module, x: torch.Tensor = x) -> None:
            if not self.active:
                return
            parts = [_weight_grad(module, x[:h], g[:h]), _weight_grad(module, x[h:], g[h:])]
            acc = self.halves.get(id(module))
            if acc is None:
                self.halves[id(module)] = parts
            else:
                acc[0] += parts[0]
                acc[1] += parts[1]

        output.register_hook(grad_hook)


def _ce_layer_grads(
    layers: list[nn.Module],
    hooks: _CeHooks,
    loss: torch.Tensor,
    x: torch.Tensor,
    retain: bool,
) -> list[LayerGrad]:
    """Run the cross-entropy backward once; halves from the hooks, totals of layers that
    cannot be split (or whose weight is also used outside the layer's calls) from autograd."""
    others = [m for m in layers if id(m) in hooks.unsplit]
    weights = [m.weight for m in others]
    hooks.active = True
    try:
        grads = torch.autograd.grad(loss, [x, *weights], retain_graph=retain, allow_unused=True)
    finally:
        hooks.active = False
    grads = grads[1:]
    direct = {id(m): g for m, g in zip(others, grads, strict=True)}
    result = []
    for m in layers:
        w = m.weight.detach()
        if id(m) in direct:
            result.append(LayerGrad(w, direct[id(m)], None))
            continue
        halves = hooks.halves.get(id(m))
        if halves is None:
            result.append(LayerGrad(w, None, None))  # the layer did not run
            continue
        result.append(LayerGrad(w, halves[0] + halves[1], (halves[0], halves[1])))
    return result


# ----- the pass ---------------------------------------------------------------------------


def train_pass(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    needs: Iterable[str],
) -> TrainPass:
    """One train-mode forward of ``images`` and the backward passes ``needs`` ask for.

    The model is left exactly as it was (modes, buffers; no ``.grad`` is written: gradients
    are taken with ``torch.autograd.grad``)."""
    t0 = time.perf_counter()
    needs = frozenset(needs)
    unknown = needs - TRAIN_NEEDS
    if unknown:
        raise ValueError(f"unknown pass needs {sorted(unknown)}")
    if "ce" in needs and labels is None:
        raise InputError("the cross-entropy gradient needs labels; pass labels=<int (N,)>")
    seed = _draw_seed()
    n = images.shape[0]
    backward = bool(needs & {"trainability", "ce", "jacobian"})
    x = images.detach().clone().requires_grad_(backward)
    handles: list[torch.utils.hooks.RemovableHandle] = []
    out = TrainPass(needs=needs, logits=torch.empty(0))
    kernel = None
    if "kernel" in needs:
        kernel = torch.zeros((n, n), dtype=torch.float64, device=images.device)
        handles += [
            m.register_forward_hook(lambda _m, _i, o: _add_codes(kernel, o))
            for m in model.modules()
            if isinstance(m, RELU_TYPES)
        ]
    meco = _MecoHooks(n, seed + 1) if "meco" in needs else None
    if meco is not None:
        handles += [m.register_forward_hook(meco) for m in model.modules()]
    want_blocks = bool(needs & {"blocks", "trainability"})
    feature_net = callable(getattr(model, "forward_with_features", None)) and bool(
        getattr(model, "feature_names", ())
    )
    block_inputs = _BlockInputs() if want_blocks and feature_net else None
    if block_inputs is not None:
        handles += [m.register_forward_hook(block_inputs) for m in model.modules()]
    child_feats: list[torch.Tensor] = []
    if want_blocks and not feature_net:
        child_feats, child_handles = _child_blocks(model)
        handles += child_handles
    layers = [m for m in scored_layers(model)] if "ce" in needs else []
    ce_hooks = _CeHooks(layers, n) if layers else None
    if ce_hooks is not None:
        handles += [m.register_forward_hook(ce_hooks) for m in layers]
    weights = [m.weight for m in layers]
    try:
        with (
            preserved(model, train=True),
            torch.set_grad_enabled(backward),
            requiring_grad(weights),
        ):
            if want_blocks and feature_net:
                logits, feats = model.forward_with_features(x)  # type: ignore[operator]
                logits = logits_of(logits)
                blocks = [f for f in feats.values() if isinstance(f, torch.Tensor)]
                if blocks and block_inputs is not None:
                    first_in = block_inputs.input_of(blocks[0])
                    if first_in is not None and first_in is not x and first_in.ndim == 4:
                        blocks.insert(0, first_in)
            else:
                logits = logits_of(model(x))
                blocks = child_feats
            for h in handles:
                h.remove()
            handles = []
            out.logits = logits.detach()
            out.kernel = kernel
            if meco is not None:
                out.meco, out.meco_opt = meco.scores()
            if want_blocks:
                out.expressivity = [
                    spectral_entropy(f) if f.ndim == 4 else math.nan for f in blocks
                ]
            order = [k for k in ("trainability", "ce", "jacobian") if k in needs]
            for step, kind in enumerate(order):
                retain = step < len(order) - 1
                if kind == "trainability":
                    gen = torch.Generator().manual_seed(seed + 2)
                    out.trainability = [
                        block_trainability(a, b, gen)
                        if isinstance(a, torch.Tensor) and a.requires_grad
                        else math.nan
                        for a, b in itertools.pairwise(blocks)
                    ]
                elif kind == "ce":
                    assert labels is not None
                    loss = F.cross_entropy(logits, check_labels(labels, logits))
                    out.layer_grads = (
                        _ce_layer_grads(layers, ce_hooks, loss, x, retain) if ce_hooks else []
                    )
                elif kind == "jacobian":
                    (grad,) = torch.autograd.grad(
                        logits.sum(), x, retain_graph=retain, allow_unused=True
                    )
                    if grad is None:
                        grad = torch.zeros_like(x)
                    out.jacobian = grad.reshape(n, -1).to(torch.float64)
    finally:
        for h in handles:
            h.remove()
    out.seconds = time.perf_counter() - t0
    return out
