"""The NAS-Bench-201 / NATS-Bench topology space (Dong & Yang, ICLR 2020), as a tgsage space.

Why it is here: its 15,625 cells have published, fully trained accuracies, so a predictor's
ranking can be checked against mature ground truth without training anything
(``tgsage.spaces.ground_truth`` reads those tables).

Cell. A DAG of 4 nodes; node 0 is the cell input, node ``j`` is the sum of one op applied to
each earlier node, and node 3 is the output. The 6 edges, in the order of the official
architecture string, are ``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``; each is one of :data:`NB201_OPS`
(``none`` = zeros, ``skip_connect`` = identity, ``nor_conv_kxk`` = ReLU-conv-BN,
``avg_pool_3x3`` = stride 1, padding 1, padding not counted in the average). The official
string writes node ``j`` as ``|op~0|op~1|..|`` and joins the nodes with ``+``:
``|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|``.

Network (the benchmark's CIFAR network): stem ``3x3 conv (C) -> BN``; ``N`` cells at ``C``; a
ResNet basic block ``C -> 2C`` with stride 2 (``ReLU-conv3x3-BN``, ``ReLU-conv3x3-BN``, shortcut
``2x2 avg pool -> 1x1 conv``); ``N`` cells at ``2C``; the same block to ``4C``; ``N`` cells;
``BN -> ReLU -> global average pool -> linear``. Defaults ``C = 16, N = 5`` (the benchmark's).
The shortcut pool uses ``ceil_mode`` so odd resolutions work (identical for even ones).

Exposed features, in forward order: ``cell0 .. cell{N-1}``, ``reduce1``, ``cell{N} ..
cell{2N-1}``, ``reduce2``, ``cell{2N} .. cell{3N-1}`` (17 for N = 5): every cell's and every
reduction block's output.

Choices: one per edge, named ``edge1<-0`` .. ``edge3<-2``, each over :data:`NB201_OPS`; the RL
controller takes one step per edge with one shared ``op`` head. Isomorphic cells (e.g. an
edge into a node whose output only feeds ``none`` edges) are NOT merged, as in the official
benchmark, which lists all 15,625; :meth:`NB201Spec.isomorphism_key` gives the benchmark's
"unique string" for anyone who wants to merge them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from tgsage.errors import SpecError
from tgsage.features import FeatureModule
from tgsage.spaces.cell_ops import ReLUConvBN
from tgsage.spaces.choices import ControllerStep, Head, SearchSpace, StepToken, Suggester
from tgsage.spaces.pooling import AvgPool3x3
from tgsage.spaces.pruning import dead_work_skipped
from tgsage.spaces.specs import ArchSpec, check_choice, check_keys, check_list, register_spec

NB201_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
#: ``(to, from)`` node pairs in the official string order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
EDGE_NAMES: tuple[str, ...] = tuple(f"edge{j}<-{i}" for j, i in EDGES)
NUM_NODES = 4
NUM_ARCHS = len(NB201_OPS) ** len(EDGES)  # 15,625
DEFAULT_CHANNELS = 16
DEFAULT_CELLS = 5


@register_spec
@dataclass(frozen=True)
class NB201Spec(ArchSpec):
    """One NAS-Bench-201 cell: the 6 edge ops in the official string order (``EDGES``).

    The spec holds only the cell, so its ``spec_hash`` identifies the benchmark architecture
    (network width and depth are builder settings, as in the benchmark's fixed macro network).
    """

    kind: ClassVar[str] = "nb201"
    ops: tuple[str, ...] = ("none",) * len(EDGES)

    def __post_init__(self) -> None:
        ops = check_list("ops", self.ops)
        if len(ops) != len(EDGES):
            raise SpecError(f"ops: {len(ops)} ops given, a NAS-Bench-201 cell has {len(EDGES)}")
        for k, op in enumerate(ops):
            check_choice(f"ops[{k}] ({EDGE_NAMES[k]})", op, NB201_OPS)
        object.__setattr__(self, "ops", tuple(ops))

    def to_dict(self) -> dict[str, Any]:
        return {"ops": list(self.ops)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NB201Spec:
        check_keys("spec", data, {"ops"})
        return cls(tuple(check_list("ops", data["ops"])))

    @property
    def has_path(self) -> bool:
        """Whether some chain of edges other than ``none`` leads from the cell's input node to
        its output node (15,625 cells, of which the ones without are pure ``none`` sinks)."""
        reached = {0}
        for (to, frm), op in sorted(zip(EDGES, self.ops, strict=True)):
            if op != "none" and frm in reached:
                reached.add(to)
        return NUM_NODES - 1 in reached

    # ----- the official architecture string -----

    def to_arch_string(self) -> str:
        """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (the benchmark's ``arch_str``)."""
        nodes = []
        for j in range(1, NUM_NODES):
            tokens = [f"{op}~{i}" for (to, i), op in zip(EDGES, self.ops, strict=True) if to == j]
            nodes.append("|" + "|".join(tokens) + "|")
        return "+".join(nodes)

    @classmethod
    def from_arch_string(cls, text: str) -> NB201Spec:
        """Parse the official string; a malformed one raises SpecError naming the bad token."""
        if not isinstance(text, str):
            raise SpecError(f"arch string: expected a str, got {type(text).__name__}")
        example = "e.g. |nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
        nodes = text.strip().split("+")
        if len(nodes) != NUM_NODES - 1:
            raise SpecError(
                f"arch string {text!r}: {len(nodes)} node group(s) separated by '+', "
                f"expected {NUM_NODES - 1} ({example})"
            )
        ops: list[str] = []
        for j, group in enumerate(nodes, start=1):
            if len(group) < 2 or group[0] != "|" or group[-1] != "|":
                raise SpecError(
                    f"arch string {text!r}: node {j} group {group!r} must start and end with '|'"
                )
            tokens = group[1:-1].split("|")
            if len(tokens) != j:
                raise SpecError(
                    f"arch string {text!r}: node {j} group {group!r} has {len(tokens)} "
                    f"edge(s), expected {j} (inputs 0..{j - 1} in order)"
                )
            for i, token in enumerate(tokens):
                op, sep, src = token.partition("~")
                if not sep or op not in NB201_OPS or src != str(i):
                    why = (
                        f"op {op!r} is not one of {NB201_OPS!r}"
                        if sep and op not in NB201_OPS
                        else f"expected '<op>~{i}' (input {i} of node {j})"
                    )
                    raise SpecError(f"arch string {text!r}: bad token {token!r}: {why}")
                ops.append(op)
        return cls(tuple(ops))

    def isomorphism_key(self) -> str:
        """The benchmark's unique string (``to_unique_str(consider_zero=True)``): equal for cells
        that compute the same function up to a reordering of additions (skip = identity, none =
        zero, a zero input makes an edge zero). Not used for hashing: the benchmark keeps all."""
        nodes = ["0"]
        for j in range(1, NUM_NODES):
            terms = []
            for (to, i), op in zip(EDGES, self.ops, strict=True):
                if to != j:
                    continue
                if op == "none" or nodes[i] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(nodes[i])
                else:
                    terms.append(f"({nodes[i]})@{op}")
            nodes.append("+".join(sorted(terms)))
        return nodes[-1]

    def __str__(self) -> str:
        return self.to_arch_string()


class NB201Space(SearchSpace):
    """All 15,625 NAS-Bench-201 cells: 6 categorical edge choices over 5 ops."""

    name: ClassVar[str] = "nb201"
    spec_type: ClassVar[type[ArchSpec]] = NB201Spec

    def config(self) -> dict[str, Any]:
        return {"space": self.name}

    def __repr__(self) -> str:
        return "NB201Space()"

    def sample(self, suggest: Suggester) -> NB201Spec:
        return NB201Spec(tuple(suggest.suggest_categorical(n, list(NB201_OPS)) for n in EDGE_NAMES))

    def spec_to_params(self, spec: ArchSpec) -> dict[str, Any]:
        if not isinstance(spec, NB201Spec):
            raise SpecError(f"kind: {spec.kind!r} spec given to the 'nb201' space")
        return dict(zip(EDGE_NAMES, spec.ops, strict=True))

    def controller_step(self, tokens: Sequence[StepToken]) -> ControllerStep | None:
        """One step per edge in string order, each with the shared ``op`` head."""
        i = len(tokens)
        if i >= len(EDGES):
            return None
        return ControllerStep(EDGE_NAMES[i], (Head(EDGE_NAMES[i], "op", NB201_OPS),))

    @staticmethod
    def all_specs(unique: bool = False) -> list[NB201Spec]:
        """Every cell, in ``itertools.product`` order of :data:`NB201_OPS` over the edges (not
        the benchmark's index order). ``unique=True`` keeps the first cell of each
        :meth:`NB201Spec.isomorphism_key` class."""
        specs = [NB201Spec(ops) for ops in itertools.product(NB201_OPS, repeat=len(EDGES))]
        if not unique:
            return specs
        seen: dict[str, NB201Spec] = {}
        for spec in specs:
            seen.setdefault(spec.isomorphism_key(), spec)
        return list(seen.values())


# ----- the network -----


class Zero(nn.Module):
    """The ``none`` op: zeros of the input's shape (kept in the graph, like the reference)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_nb201_op(op: str, c: int) -> nn.Module:
    """One edge op mapping ``c`` channels to ``c`` at stride 1."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3)
    if op == "avg_pool_3x3":
        return AvgPool3x3(1)
    raise SpecError(f"op: {op!r} is not one of {NB201_OPS!r}")


class NB201Cell(nn.Module):
    """Node ``j`` = sum over earlier nodes ``i`` of ``op_{j<-i}(node i)``; returns node 3.

    ``none`` edges are left out of the sums (a node whose inputs are all ``none`` is zeros),
    which gives the same values as adding zeros, without the extra work. Nodes that reach the
    output only through ``none`` edges are computed as in the benchmark, except within
    :func:`~tgsage.spaces.pruning.skip_dead_work` (training steps), which skips them."""

    def __init__(self, spec: NB201Spec, c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(make_nb201_op(op, c) for op in spec.ops)
        self.incoming = [
            [
                (k, i)
                for k, ((to, i), op) in enumerate(zip(EDGES, spec.ops, strict=True))
                if to == j and op != "none"
            ]
            for j in range(1, NUM_NODES)
        ]
        self.dead_nodes = _dead_nodes(self.incoming)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.dead_nodes if self.dead_nodes and dead_work_skipped() else ()
        nodes = [x]
        for j, terms in enumerate(self.incoming, start=1):
            if j in skip:
                nodes.append(x)  # a placeholder: no live node reads a dead one
                continue
            if not terms:
                nodes.append(x.mul(0.0))
                continue
            k, i = terms[0]
            total = self.edges[k](nodes[i])
            for k, i in terms[1:]:
                total = total + self.edges[k](nodes[i])
            nodes.append(total)
        return nodes[-1]


def _dead_nodes(incoming: list[list[tuple[int, int]]]) -> frozenset[int]:
    """Nodes ``1 .. NUM_NODES - 2`` with no path of non-``none`` edges to the output node."""
    live = {NUM_NODES - 1}
    for j in range(NUM_NODES - 1, 0, -1):  # the sources of a live node are live
        if j in live:
            live.update(i for _, i in incoming[j - 1])
    return frozenset(range(1, NUM_NODES - 1)) - live


class ResNetReduction(nn.Module):
    """The benchmark's reduction: a stride-2 ResNet basic block with a pooled 1x1 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, stride=2)
        self.conv_b = ReLUConvBN(cout, cout, 3)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True),
            nn.Conv2d(cin, cout, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Net(FeatureModule):
    """The NAS-Bench-201 CIFAR network of a :class:`NB201Spec`; implements ``FeatureNet``."""

    def __init__(
        self,
        spec: NB201Spec,
        num_classes: int = 10,
        in_channels: int = 3,
        width_mult: float = 1.0,
        channels: int = DEFAULT_CHANNELS,
        num_cells: int = DEFAULT_CELLS,
    ) -> None:
        super().__init__()
        if not isinstance(spec, NB201Spec):
            raise SpecError(f"spec: expected an NB201Spec, got {type(spec).__name__}")
        self.spec = spec
        c = max(1, round(channels * width_mult))
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        )
        blocks: list[nn.Module] = []
        names: list[str] = []
        for stage in range(3):
            cc = c * 2**stage
            if stage > 0:
                blocks.append(ResNetReduction(cc // 2, cc))
                names.append(f"reduce{stage}")
            for n in range(num_cells):
                blocks.append(NB201Cell(spec, cc))
                names.append(f"cell{stage * num_cells + n}")
        self.blocks = nn.ModuleList(blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(4 * c, num_classes)
        self._names = tuple(names)

    def forward_with_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h = self.stem(x)
        feats: dict[str, torch.Tensor] = {}
        for name, block in zip(self._names, self.blocks, strict=True):
            h = block(h)
            feats[name] = h
        logits = self.classifier(self.lastact(h).mean(dim=(2, 3)))
        return logits, feats
