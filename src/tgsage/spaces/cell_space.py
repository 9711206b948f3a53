"""The cell space (paper 4.3; NASNet / PNAS): a searched cell stacked into a CIFAR network.

Cell. Two inputs, the outputs of the two previous cells: index 0 = the cell before the
previous one ("prev_prev"), 1 = the previous cell ("prev"); the first cell gets the stem's
output for both. Each input is first projected to the cell's ``C`` channels
(``ReLU-1x1 conv-BN``; a factorized reduction when "prev_prev" has twice the resolution).
``B`` blocks (default 5) follow; block ``b`` picks two inputs from {0, 1, 2, .., b + 1}
(``2 + j`` = block ``j``) and an op for each from :data:`OPS`, and adds the two results. The
two operands of the add are unordered, so a block is stored with its ``(input, op)`` pairs
sorted. The cell output concatenates (channels) the blocks no other block consumes
(``concat="unused"``, NASNet's rule and the search default) or every block
(``concat="all"``, PNASNet's), plus each cell input whose force flag is set
(``concat_prev_prev`` / ``concat_prev``, TG-SAGE's two extra choices, modelled on the NASNet
reference code), reduced by a factorized reduction in a reduction cell.

Network (CIFAR layout of NASNet/PNAS): stem ``3x3 conv (stem_multiplier * F) -> BN``, then
``N`` normal cells, a reduction cell, ``N`` normal cells, a reduction cell, ``N`` normal cells
(``layout="nasnet"``: ``3N + 2`` cells, the search default; the paper's 8 RDMs at N=2), or
``3N`` cells of which the first of stages 2 and 3 is the reduction (``layout="pnas"``, how the
PNAS reference code counts ``N``; its author confirms 9 cells for CIFAR N=3), ``F`` filters per
block in the first stage, doubled at each reduction; then ``ReLU -> global average pool ->
linear``. A reduction cell applies stride 2 to the ops that read the cell inputs. A spec either
carries a separate ``reduction`` cell (NASNet) or reuses its ``normal`` cell with stride 2 (PNAS;
the search default). Exposed features: "cell0", "cell1", ..., every cell's output in forward
order (8 for the search setting N=2, as in the paper).

Stems (``stem``): ``"cifar"`` as above; ``"imagenet"`` is the mobile ImageNet stem of the
TF-slim NASNet/PNASNet code: a stride-2 ``3x3 conv (32 * stem_multiplier)`` and two reduction
cells with ``F/4`` and ``F/2`` filters ("stem cells", not exposed as features), so a 224-pixel
image reaches the first stage at 28x28; ``"imagenet64"`` is the same without the two stem cells
(paper 4.4: "we removed the first 2 reduction cells"), so a 64-pixel image reaches it at 32x32.

Final training extras, both off unless asked for: ``auxiliary=True`` adds NASNet's auxiliary
head after the last cell of the second stage (in training mode ``forward`` then returns
``(logits, aux_logits)``; eval mode and ``forward_with_features`` return logits only), and
:meth:`CellNet.set_drop_path` sets the drop-path rate (each cell drops the outputs of its
non-identity ops with ``rate * (i + 1) / L`` for cell ``i`` of ``L``, stem cells included, as
NASNet scales it by depth; training mode only).

Choice names: "cell/block{b}/input_a" (options 0..b+1), "cell/block{b}/op_a", same for ``_b``,
"cell/concat_prev_prev", "cell/concat_prev"; with a separate reduction cell the prefixes are
"normal/" and "reduction/". Mutation changes one operand's input or op (the a/b labels can
swap when the block is re-sorted; ``changed_choices`` accounts for that) or one force flag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import torch
from torch import nn

from tgsage.errors import SpecError
from tgsage.features import FeatureModule
from tgsage.spaces.cell_ops import (
    OPS,
    AuxiliaryHead,
    FactorizedReduce,
    ReLUConvBN,
    drop_path,
    make_op,
)
from tgsage.spaces.choices import ControllerStep, Head, SearchSpace, StepToken, Suggester
from tgsage.spaces.specs import (
    ArchSpec,
    check_choice,
    check_int,
    check_keys,
    check_list,
    register_spec,
    same_value,
)

CONCAT_RULES = ("unused", "all")
LAYOUTS = ("nasnet", "pnas")
STEMS = ("cifar", "imagenet", "imagenet64")
#: The image size each stem is designed for (the auxiliary head's default geometry).
STEM_IMAGE_SIZE = {"cifar": 32, "imagenet": 224, "imagenet64": 64}
PREV_PREV, PREV = 0, 1
_BLOCK_FIELDS = {"input_a", "op_a", "input_b", "op_b"}


@dataclass(frozen=True)
class Block:
    """``op_a(input_a) + op_b(input_b)``; the two operands are stored sorted."""

    input_a: int
    op_a: str
    input_b: int
    op_b: str

    def __post_init__(self) -> None:
        a, b = (self.input_a, self.op_a), (self.input_b, self.op_b)
        # sort only well-formed operands, so an error still names the field the user wrote
        if all(type(x[0]) is int and x[1] in OPS for x in (a, b)) and b < a:
            for name, value in zip(("input_a", "op_a", "input_b", "op_b"), b + a, strict=True):
                object.__setattr__(self, name, value)

    def check(self, where: str, index: int) -> None:
        for side in "ab":
            check_int(f"{where}.input_{side}", getattr(self, f"input_{side}"), 0, index + 1)
            check_choice(f"{where}.op_{side}", getattr(self, f"op_{side}"), OPS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_a": self.input_a,
            "op_a": self.op_a,
            "input_b": self.input_b,
            "op_b": self.op_b,
        }


@dataclass(frozen=True)
class Cell:
    """``B`` blocks plus the two flags that force a cell input into the output."""

    blocks: tuple[Block, ...]
    concat_prev_prev: bool = False
    concat_prev: bool = False

    def check(self, where: str) -> None:
        blocks = check_list(f"{where}.blocks", self.blocks)
        if not blocks:
            raise SpecError(f"{where}.blocks: empty (a cell needs at least one block)")
        for b, block in enumerate(blocks):
            if not isinstance(block, Block):
                raise SpecError(
                    f"{where}.blocks[{b}]: expected a Block, got {type(block).__name__}"
                )
            block.check(f"{where}.blocks[{b}]", b)
        object.__setattr__(self, "blocks", tuple(blocks))
        for flag in ("concat_prev_prev", "concat_prev"):
            check_choice(f"{where}.{flag}", getattr(self, flag), (False, True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "blocks": [b.to_dict() for b in self.blocks],
            "concat_prev_prev": self.concat_prev_prev,
            "concat_prev": self.concat_prev,
        }

    @classmethod
    def from_dict(cls, where: str, data: Any) -> Cell:
        check_keys(where, data, {"blocks"}, {"concat_prev_prev", "concat_prev"})
        blocks = []
        for b, item in enumerate(check_list(f"{where}.blocks", data["blocks"])):
            check_keys(f"{where}.blocks[{b}]", item, _BLOCK_FIELDS)
            blocks.append(Block(**item))
        flags = {k: data[k] for k in ("concat_prev_prev", "concat_prev") if k in data}
        return cls(tuple(blocks), **flags)

    def output_sources(self, concat: str) -> tuple[int, ...]:
        """Hidden-state indices (0, 1 = inputs, 2 + j = block j) concatenated into the output."""
        n = len(self.blocks)
        used = {i for blk in self.blocks for i in (blk.input_a, blk.input_b)}
        blocks = [2 + j for j in range(n) if concat == "all" or 2 + j not in used]
        forced = [i for i, f in ((PREV_PREV, self.concat_prev_prev), (PREV, self.concat_prev)) if f]
        return tuple(forced + blocks)


@register_spec
@dataclass(frozen=True)
class CellSpec(ArchSpec):
    """A cell-space architecture: the cell(s) and the network settings (N, F, stem, concat).

    ``stem`` is left out of the JSON form when it is the default ``"cifar"``, so specs written
    before it existed keep their hash."""

    kind: ClassVar[str] = "cell"
    normal: Cell = field(default_factory=lambda: Cell(()))
    reduction: Cell | None = None
    num_cells: int = 2
    filters: int = 32
    stem_multiplier: int = 3
    concat: str = "unused"
    layout: str = "nasnet"
    stem: str = "cifar"

    def __post_init__(self) -> None:
        for name, cell in (("normal", self.normal), ("reduction", self.reduction)):
            if name == "reduction" and cell is None:
                continue
            if not isinstance(cell, Cell):
                raise SpecError(f"{name}: expected a Cell, got {type(cell).__name__}")
            cell.check(name)
        check_int("num_cells", self.num_cells, 1)
        check_int("filters", self.filters, 1)
        check_int("stem_multiplier", self.stem_multiplier, 1)
        check_choice("concat", self.concat, CONCAT_RULES)
        check_choice("layout", self.layout, LAYOUTS)
        check_choice("stem", self.stem, STEMS)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "normal": self.normal.to_dict(),
            "num_cells": self.num_cells,
            "filters": self.filters,
            "stem_multiplier": self.stem_multiplier,
            "concat": self.concat,
            "layout": self.layout,
        }
        if self.reduction is not None:
            out["reduction"] = self.reduction.to_dict()
        if self.stem != "cifar":
            out["stem"] = self.stem
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellSpec:
        keys = {"normal"}
        optional = {
            "reduction",
            "num_cells",
            "filters",
            "stem_multiplier",
            "concat",
            "layout",
            "stem",
        }
        check_keys("spec", data, keys, optional)
        kw = {k: data[k] for k in optional - {"reduction"} if k in data}
        reduction = data.get("reduction")
        return cls(
            normal=Cell.from_dict("normal", data["normal"]),
            reduction=None if reduction is None else Cell.from_dict("reduction", reduction),
            **kw,
        )

    @property
    def reduction_cell(self) -> Cell:
        return self.normal if self.reduction is None else self.reduction

    def with_network(
        self,
        num_cells: int | None = None,
        filters: int | None = None,
        stem: str | None = None,
        stem_multiplier: int | None = None,
    ) -> CellSpec:
        """The same cell(s) with other network settings (e.g. the paper's final N and F, or
        the ImageNet stem); None keeps a setting."""
        changes = {
            "num_cells": num_cells,
            "filters": filters,
            "stem": stem,
            "stem_multiplier": stem_multiplier,
        }
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


class CellSpace(SearchSpace):
    """NASNet/PNAS cell space; network settings are plain options copied into every spec."""

    name: ClassVar[str] = "cell"
    spec_type: ClassVar[type[ArchSpec]] = CellSpec

    def __init__(
        self,
        blocks: int = 5,
        num_cells: int = 2,
        filters: int = 32,
        separate_reduction: bool = False,
        concat: str = "unused",
        stem_multiplier: int = 3,
        layout: str = "nasnet",
        stem: str = "cifar",
    ) -> None:
        self.blocks = check_int("blocks", blocks, 1)
        self.num_cells = check_int("num_cells", num_cells, 1)
        self.filters = check_int("filters", filters, 1)
        self.separate_reduction = bool(separate_reduction)
        self.concat = check_choice("concat", concat, CONCAT_RULES)
        self.stem_multiplier = check_int("stem_multiplier", stem_multiplier, 1)
        self.layout = check_choice("layout", layout, LAYOUTS)
        self.stem = check_choice("stem", stem, STEMS)

    def config(self) -> dict[str, Any]:
        return {
            "space": self.name,
            "blocks": self.blocks,
            "num_cells": self.num_cells,
            "filters": self.filters,
            "separate_reduction": self.separate_reduction,
            "concat": self.concat,
            "stem_multiplier": self.stem_multiplier,
            "layout": self.layout,
            "stem": self.stem,
        }

    def __repr__(self) -> str:
        return "CellSpace(" + ", ".join(f"{k}={v!r}" for k, v in self.config().items()) + ")"

    @property
    def prefixes(self) -> tuple[str, ...]:
        return ("normal", "reduction") if self.separate_reduction else ("cell",)

    def _sample_cell(self, suggest: Suggester, prefix: str) -> Cell:
        blocks = []
        for b in range(self.blocks):
            kw = {}
            for side in "ab":
                kw[f"input_{side}"] = suggest.suggest_categorical(
                    f"{prefix}/block{b}/input_{side}", list(range(b + 2))
                )
                kw[f"op_{side}"] = suggest.suggest_categorical(
                    f"{prefix}/block{b}/op_{side}", list(OPS)
                )
            blocks.append(Block(**kw))
        pp = suggest.suggest_categorical(f"{prefix}/concat_prev_prev", [False, True])
        p = suggest.suggest_categorical(f"{prefix}/concat_prev", [False, True])
        return Cell(tuple(blocks), concat_prev_prev=pp, concat_prev=p)

    def sample(self, suggest: Suggester) -> CellSpec:
        cells = [self._sample_cell(suggest, p) for p in self.prefixes]
        return CellSpec(
            normal=cells[0],
            reduction=cells[1] if self.separate_reduction else None,
            num_cells=self.num_cells,
            filters=self.filters,
            stem_multiplier=self.stem_multiplier,
            concat=self.concat,
            layout=self.layout,
            stem=self.stem,
        )

    def spec_to_params(self, spec: ArchSpec) -> dict[str, Any]:
        if not isinstance(spec, CellSpec):
            raise SpecError(f"kind: {spec.kind!r} spec given to the 'cell' space")
        if (spec.reduction is not None) != self.separate_reduction:
            want = "a separate" if self.separate_reduction else "no separate"
            raise SpecError(f"reduction: this cell space expects {want} reduction cell")
        for name in ("num_cells", "filters", "stem_multiplier", "concat", "layout", "stem"):
            if not same_value(getattr(spec, name), getattr(self, name)):
                raise SpecError(
                    f"{name}: {getattr(spec, name)!r} differs from this space's "
                    f"{getattr(self, name)!r} (use get_space('cell', {name}=...))"
                )
        cells = [spec.normal] + ([spec.reduction] if spec.reduction is not None else [])
        params: dict[str, Any] = {}
        for prefix, cell in zip(self.prefixes, cells, strict=True):
            if len(cell.blocks) != self.blocks:
                raise SpecError(
                    f"{'normal' if cell is spec.normal else 'reduction'}.blocks: "
                    f"{len(cell.blocks)} blocks, this space has {self.blocks}"
                )
            for b, blk in enumerate(cell.blocks):
                for key, value in blk.to_dict().items():
                    params[f"{prefix}/block{b}/{key}"] = value
            params[f"{prefix}/concat_prev_prev"] = cell.concat_prev_prev
            params[f"{prefix}/concat_prev"] = cell.concat_prev
        return params

    @staticmethod
    def _alignments(old: Mapping[str, Any], new: Mapping[str, Any], block: str) -> list[set[str]]:
        """Changed fields of one block, matching new operands straight and crosswise."""
        names = [block + k for k in ("input_a", "op_a", "input_b", "op_b")]
        crossed = [names[2], names[3], names[0], names[1]]
        return [
            {n for n, m in zip(names, other, strict=True) if not same_value(old[n], new[m])}
            for other in (names, crossed)
        ]

    def changed_choices(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
        """Like the base, but a block's operands may be matched crosswise (a <-> b); the
        alignment with fewer changes is reported."""
        changed = super().changed_choices(old, new)
        for block in {n.rsplit("/", 1)[0] + "/" for n in changed if "/block" in n}:
            changed = {n for n in changed if not n.startswith(block)}
            changed |= min(self._alignments(old, new, block), key=len)
        return changed

    def is_single_change(self, old: Mapping[str, Any], new: Mapping[str, Any], name: str) -> bool:
        if "/block" not in name:
            return super().is_single_change(old, new, name)
        block = name.rsplit("/", 1)[0] + "/"
        others = {n for n in super().changed_choices(old, new) if not n.startswith(block)}
        return not others and {name} in self._alignments(old, new, block)

    def controller_step(self, tokens: Sequence[StepToken]) -> ControllerStep | None:
        """One step per block (heads input_a, op_a, input_b, op_b), then one per cell for the
        two force-concat flags; normal cell first when there is a separate reduction cell."""
        per_cell = self.blocks + 1
        i = len(tokens)
        if i >= per_cell * len(self.prefixes):
            return None
        prefix, j = self.prefixes[i // per_cell], i % per_cell
        if j == self.blocks:
            flags = tuple(
                Head(f"{prefix}/{f}", f, (False, True)) for f in ("concat_prev_prev", "concat_prev")
            )
            return ControllerStep(f"{prefix}/output", flags)
        inputs = tuple(range(j + 2))
        heads = (
            Head(f"{prefix}/block{j}/input_a", "input_a", inputs),
            Head(f"{prefix}/block{j}/op_a", "op_a", OPS),
            Head(f"{prefix}/block{j}/input_b", "input_b", inputs),
            Head(f"{prefix}/block{j}/op_b", "op_b", OPS),
        )
        return ControllerStep(f"{prefix}/block{j}", heads)


class CellModule(nn.Module):
    """One cell instance: preprocessing, blocks and the output concatenation.

    ``drop_prob`` (set through :meth:`CellNet.set_drop_path`) drops the outputs of the cell's
    non-identity ops per sample in training mode."""

    def __init__(
        self, cell: Cell, c_pp: int, c_p: int, c: int, reduction: bool, reduce_pp: bool, concat: str
    ) -> None:
        super().__init__()
        self.cell = cell
        used = {i for blk in cell.blocks for i in (blk.input_a, blk.input_b)}
        self.out_sources = cell.output_sources(concat)
        needed = used | set(self.out_sources)
        self.pre_pp = (
            (FactorizedReduce(c_pp, c) if reduce_pp else ReLUConvBN(c_pp, c))
            if PREV_PREV in needed
            else None
        )
        self.pre_p = ReLUConvBN(c_p, c) if PREV in needed else None
        self.ops = nn.ModuleList()
        droppable = []
        for blk in cell.blocks:
            for i, op in ((blk.input_a, blk.op_a), (blk.input_b, blk.op_b)):
                stride = 2 if reduction and i < 2 else 1
                self.ops.append(make_op(op, c, stride))
                droppable.append(op != "identity")  # NASNet never drops an identity
        self.droppable = tuple(droppable)
        self.reduce_out = nn.ModuleDict(
            {str(i): FactorizedReduce(c, c) for i in self.out_sources if i < 2 and reduction}
        )
        self.out_channels = c * len(self.out_sources)
        self.drop_prob = 0.0
        self.drop_scale = 1.0  # this cell's share of the network's rate (depth ratio)

    def forward(self, s_pp: torch.Tensor, s_p: torch.Tensor) -> torch.Tensor:
        states: list[torch.Tensor | None] = [
            self.pre_pp(s_pp) if self.pre_pp is not None else None,
            self.pre_p(s_p) if self.pre_p is not None else None,
        ]
        p = self.drop_prob if self.training else 0.0
        for b, blk in enumerate(self.cell.blocks):
            a = self.ops[2 * b](states[blk.input_a])
            c = self.ops[2 * b + 1](states[blk.input_b])
            if p > 0.0:
                a = drop_path(a, p) if self.droppable[2 * b] else a
                c = drop_path(c, p) if self.droppable[2 * b + 1] else c
            states.append(a + c)
        outs = []
        for i in self.out_sources:
            t = states[i]
            outs.append(self.reduce_out[str(i)](t) if str(i) in self.reduce_out else t)
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


def _halve(size: tuple[int, int]) -> tuple[int, int]:
    """Spatial size after any stride-2 layer of the network (all pad to ``ceil(H / 2)``)."""
    return ((size[0] + 1) // 2, (size[1] + 1) // 2)


class CellNet(FeatureModule):
    """The network of a :class:`CellSpec` (CIFAR or ImageNet stem); implements ``FeatureNet``.

    ``auxiliary=True`` adds the auxiliary head for final training; ``image_size`` (H, W) fixes
    its geometry (default: the size the spec's stem is designed for)."""

    def __init__(
        self,
        spec: CellSpec,
        num_classes: int,
        in_channels: int = 3,
        width_mult: float = 1.0,
        *,
        auxiliary: bool = False,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        size = tuple(image_size) if image_size is not None else (STEM_IMAGE_SIZE[spec.stem],) * 2
        c = max(2, round(spec.filters * width_mult))
        if spec.stem == "cifar":
            c_stem = spec.stem_multiplier * c
            stem_conv = nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False)
        else:
            c_stem = max(1, round(32 * spec.stem_multiplier * width_mult))
            stem_conv = nn.Conv2d(in_channels, c_stem, 3, stride=2, padding=1, bias=False)
            size = _halve(size)
        self.stem = nn.Sequential(stem_conv, nn.BatchNorm2d(c_stem))
        # (channels, resolution level) of the two latest outputs: prev_prev, prev
        hist = [(c_stem, 0), (c_stem, 0)]

        def add(cell: Cell, cc: int, reduction: bool) -> CellModule:
            nonlocal hist, size
            reduce_pp = hist[0][1] < hist[1][1]
            mod = CellModule(cell, hist[0][0], hist[1][0], cc, reduction, reduce_pp, spec.concat)
            level = hist[1][1] + int(reduction)
            size = _halve(size) if reduction else size
            hist = [hist[1], (mod.out_channels, level)]
            return mod

        self.stem_cells = nn.ModuleList()
        if spec.stem == "imagenet":
            for k in (2, 1):  # TF-slim's stem cells: filter scaling 1/4, then 1/2
                self.stem_cells.append(add(spec.reduction_cell, max(1, c // 2**k), True))
        self.cells = nn.ModuleList()
        self.auxiliary_head: AuxiliaryHead | None = None
        self._aux_index = -1
        for stage in range(3):
            kinds = ([True] if stage > 0 else []) + [False] * spec.num_cells
            if spec.layout == "pnas" and stage > 0:
                kinds = kinds[:-1]  # the reduction cell is one of the stage's N cells
            for reduction in kinds:
                cell = spec.reduction_cell if reduction else spec.normal
                self.cells.append(add(cell, c * 2**stage, reduction))
            if stage == 1 and auxiliary:
                self._aux_index = len(self.cells) - 1
                self.auxiliary_head = AuxiliaryHead(hist[1][0], num_classes, size, width_mult)
        every = [*self.stem_cells, *self.cells]
        for i, mod in enumerate(every):
            mod.drop_scale = (i + 1) / len(every)
        self.relu = nn.ReLU(inplace=False)
        self.classifier = nn.Linear(hist[1][0], num_classes)
        self._names = tuple(f"cell{i}" for i in range(len(self.cells)))

    @property
    def drop_path_rate(self) -> float:
        """The rate last set by :meth:`set_drop_path` (the deepest cell's probability)."""
        return self.cells[-1].drop_prob if len(self.cells) else 0.0

    def set_drop_path(self, rate: float) -> None:
        """Drop-path probability ``rate * (i + 1) / L`` for cell ``i`` of ``L`` (training only);
        a schedule calls this as training progresses (NASNet: ``rate`` grows linearly to its
        final value over the run)."""
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"drop-path rate must be in [0, 1), got {rate!r}")
        for mod in [*self.stem_cells, *self.cells]:
            mod.drop_prob = rate * mod.drop_scale

    def _run(
        self, x: torch.Tensor, features: bool, auxiliary: bool
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        s_pp = s_p = self.stem(x)
        for cell in self.stem_cells:
            s_pp, s_p = s_p, cell(s_pp, s_p)
        feats: dict[str, torch.Tensor] = {}
        aux = None
        for i, (name, cell) in enumerate(zip(self._names, self.cells, strict=True)):
            s_pp, s_p = s_p, cell(s_pp, s_p)
            if features:
                feats[name] = s_p
            if auxiliary and i == self._aux_index:
                assert self.auxiliary_head is not None
                aux = self.auxiliary_head(s_p)
        logits = self.classifier(self.relu(s_p).mean(dim=(2, 3)))
        return logits, feats, aux

    def forward_with_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, feats, _ = self._run(x, True, False)
        return logits, feats

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits; ``(logits, aux_logits)`` in training mode when there is an auxiliary head."""
        auxiliary = self.training and self.auxiliary_head is not None
        logits, _, aux = self._run(x, False, auxiliary)
        return (logits, aux) if aux is not None else logits
