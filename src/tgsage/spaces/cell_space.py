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
PNAS reference code counts ``N``; its author confirms 9 cells for CIFAR N=3), ``F`` filters per block in the first stage, doubled at each reduction;
then ``ReLU -> global average pool -> linear``. No auxiliary head, no drop-path. A reduction
cell applies stride 2 to the ops that read the cell inputs. A spec either carries a separate
``reduction`` cell (NASNet) or reuses its ``normal`` cell with stride 2 (PNAS; the search
default). Exposed features: "cell0", "cell1", ..., every cell's output in forward order
(8 for the search setting N=2, as in the paper).

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
from tgsage.spaces.cell_ops import OPS, FactorizedReduce, ReLUConvBN, make_op
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
    """A cell-space architecture: the cell(s) and the network settings (N, F, stem, concat)."""

    kind: ClassVar[str] = "cell"
    normal: Cell = field(default_factory=lambda: Cell(()))
    reduction: Cell | None = None
    num_cells: int = 2
    filters: int = 32
    stem_multiplier: int = 3
    concat: str = "unused"
    layout: str = "nasnet"

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
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellSpec:
        keys = {"normal"}
        optional = {"reduction", "num_cells", "filters", "stem_multiplier", "concat", "layout"}
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

    def with_network(self, num_cells: int | None = None, filters: int | None = None) -> CellSpec:
        """The same cell(s) with other network settings (e.g. the paper's final N and F)."""
        return replace(
            self,
            num_cells=self.num_cells if num_cells is None else num_cells,
            filters=self.filters if filters is None else filters,
        )


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
    ) -> None:
        self.blocks = check_int("blocks", blocks, 1)
        self.num_cells = check_int("num_cells", num_cells, 1)
        self.filters = check_int("filters", filters, 1)
        self.separate_reduction = bool(separate_reduction)
        self.concat = check_choice("concat", concat, CONCAT_RULES)
        self.stem_multiplier = check_int("stem_multiplier", stem_multiplier, 1)
        self.layout = check_choice("layout", layout, LAYOUTS)

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
        )

    def spec_to_params(self, spec: ArchSpec) -> dict[str, Any]:
        if not isinstance(spec, CellSpec):
            raise SpecError(f"kind: {spec.kind!r} spec given to the 'cell' space")
        if (spec.reduction is not None) != self.separate_reduction:
            want = "a separate" if self.separate_reduction else "no separate"
            raise SpecError(f"reduction: this cell space expects {want} reduction cell")
        for name in ("num_cells", "filters", "stem_multiplier", "concat", "layout"):
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
    """One cell instance: preprocessing, blocks and the output concatenation."""

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
        for blk in cell.blocks:
            for i, op in ((blk.input_a, blk.op_a), (blk.input_b, blk.op_b)):
                stride = 2 if reduction and i < 2 else 1
                self.ops.append(make_op(op, c, stride))
        self.reduce_out = nn.ModuleDict(
            {str(i): FactorizedReduce(c, c) for i in self.out_sources if i < 2 and reduction}
        )
        self.out_channels = c * len(self.out_sources)

    def forward(self, s_pp: torch.Tensor, s_p: torch.Tensor) -> torch.Tensor:
        states: list[torch.Tensor | None] = [
            self.pre_pp(s_pp) if self.pre_pp is not None else None,
            self.pre_p(s_p) if self.pre_p is not None else None,
        ]
        for b, blk in enumerate(self.cell.blocks):
            a = self.ops[2 * b](states[blk.input_a])
            states.append(a + self.ops[2 * b + 1](states[blk.input_b]))
        outs = []
        for i in self.out_sources:
            t = states[i]
            outs.append(self.reduce_out[str(i)](t) if str(i) in self.reduce_out else t)
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


class CellNet(FeatureModule):
    """The CIFAR-layout network of a :class:`CellSpec`; implements ``FeatureNet``."""

    def __init__(
        self, spec: CellSpec, num_classes: int, in_channels: int = 3, width_mult: float = 1.0
    ) -> None:
        super().__init__()
        self.spec = spec
        c = max(2, round(spec.filters * width_mult))
        c_stem = spec.stem_multiplier * c
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
        )
        self.cells = nn.ModuleList()
        # (channels, resolution level) of the two latest outputs: prev_prev, prev
        hist = [(c_stem, 0), (c_stem, 0)]
        for stage in range(3):
            kinds = ([True] if stage > 0 else []) + [False] * spec.num_cells
            if spec.layout == "pnas" and stage > 0:
                kinds = kinds[:-1]  # the reduction cell is one of the stage's N cells
            for reduction in kinds:
                cell = spec.reduction_cell if reduction else spec.normal
                cc = c * 2**stage
                reduce_pp = hist[0][1] < hist[1][1]
                mod = CellModule(
                    cell, hist[0][0], hist[1][0], cc, reduction, reduce_pp, spec.concat
                )
                self.cells.append(mod)
                hist = [hist[1], (mod.out_channels, stage)]
        self.relu = nn.ReLU(inplace=False)
        self.classifier = nn.Linear(hist[1][0], num_classes)
        self._names = tuple(f"cell{i}" for i in range(len(self.cells)))

    def forward_with_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s_pp = s_p = self.stem(x)
        feats: dict[str, torch.Tensor] = {}
        for name, cell in zip(self._names, self.cells, strict=True):
            s_pp, s_p = s_p, cell(s_pp, s_p)
            feats[name] = s_p
        logits = self.classifier(self.relu(s_p).mean(dim=(2, 3)))
        return logits, feats
