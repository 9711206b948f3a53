"""Drawings of architectures with plain matplotlib (no graphviz): deterministic layouts.

* Layer networks: the image on top, one box per layer below it in forward order (filters,
  kernel, stride, activation, norm), the classifier head at the bottom. Edges follow each
  layer's inputs; skip connections bend to the right, more the longer they are.
* Cells: the two cell inputs h_{-2} (prev-prev) and h_{-1} (prev) on top, each block placed at
  its depth (1 + the deepest of its inputs) and labelled ``+``, edges labelled with their op,
  and the concat node at the bottom fed by the hidden states the cell outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.patches import FancyArrowPatch

from tgsage.errors import SpecError
from tgsage.report._figure import new_figure, save
from tgsage.spaces import Cell, CellSpec, LayerSpec
from tgsage.spaces.specs import ArchSpec, spec_from_dict, spec_from_json

BOX = dict(boxstyle="round,pad=0.3", linewidth=1.0)


def _node(ax: Any, x: float, y: float, text: str, color: str, fontsize: float = 7.5) -> None:
    ax.text(
        x,
        y,
        text,
        ha="center",
        va="center",
        fontsize=fontsize,
        zorder=3,
        bbox={**BOX, "facecolor": color, "edgecolor": "#333333"},
    )


def _edge(
    ax: Any,
    a: tuple[float, float],
    b: tuple[float, float],
    rad: float = 0.0,
    label: str | None = None,
    color: str = "#555555",
) -> None:
    ax.add_patch(
        FancyArrowPatch(
            a,
            b,
            arrowstyle="-|>",
            mutation_scale=9,
            color=color,
            linewidth=0.9,
            shrinkA=11,
            shrinkB=11,
            zorder=1,
            connectionstyle=f"arc3,rad={rad}",
            clip_on=False,
        )
    )
    if label:
        mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
        ax.text(
            mx,
            my,
            label,
            fontsize=5.5,
            ha="center",
            va="center",
            zorder=4,
            color="#1a1a80",
            bbox={
                "boxstyle": "round,pad=0.1",
                "facecolor": "white",
                "edgecolor": "none",
                "alpha": 0.85,
            },
        )


def _as_spec(spec: Any) -> ArchSpec:
    if isinstance(spec, ArchSpec):
        return spec
    if isinstance(spec, str):
        return spec_from_json(spec)
    if isinstance(spec, dict):
        return spec_from_dict(spec)
    raise SpecError(f"drawing: expected a spec, its JSON or dict, got {type(spec).__name__}")


def _skip_or_next(ax: Any, a: tuple[float, float], b: tuple[float, float], gap: int) -> None:
    """Straight down to the next node; skips leave and enter at the right-hand side of the
    boxes and bulge right, longer ones further, so they do not cross the boxes."""
    if gap == 1:
        _edge(ax, a, b)
        return
    x = 0.95 + 0.05 * min(gap, 10)
    _edge(ax, (a[0] + x, a[1]), (b[0] + x, b[1]), -min(0.45, 0.1 + 0.03 * gap))


def draw_layer_network(
    spec: LayerSpec | str | dict, path: str | Path, *, title: str | None = None
) -> Path:
    """A layer-space network as a top-down graph (see the module docstring)."""
    s = _as_spec(spec)
    if not isinstance(s, LayerSpec):
        raise SpecError(f"draw_layer_network: a {s.kind!r} spec; use draw_cell for cells")
    n = len(s.layers)
    pos = {-1: (0.0, 0.0)}
    for i in range(n):
        pos[i] = (0.0, -(i + 1.0))
    head = (0.0, -(n + 1.0))
    fig = new_figure(5.2, 0.62 * (n + 2) + 0.8)
    ax = fig.add_subplot()
    _node(ax, *pos[-1], "image", "#e8e8e8")
    for i, layer in enumerate(s.layers):
        act = "ReLU" if layer.activation == "relu" else "linear"
        norm = ", BN" if layer.norm == "batchnorm" else ""
        text = (
            f"layer{i}: {layer.filters} x {layer.kernel_h}x{layer.kernel_w}"
            f"{' /2' if layer.stride == 2 else ''}  {act}{norm}"
        )
        _node(ax, *pos[i], text, "#cfe2f3" if layer.stride == 1 else "#f9d9b5")
        for src in layer.inputs:
            _skip_or_next(ax, pos[src], pos[i], i - src)
    _node(ax, *head, "head: global avg pool + linear", "#d9ead3")
    for src in s.head_inputs:
        _skip_or_next(ax, pos[src], head, n - src)
    ax.set_xlim(-2.4, 3.4)
    ax.set_ylim(head[1] - 0.6, 0.6)
    ax.axis("off")
    ax.set_title(title or f"layer network {s.spec_hash} ({n} layers)", fontsize=9)
    return save(fig, path)


def _block_depths(cell: Cell) -> list[int]:
    depth = {0: 0, 1: 0}
    for j, b in enumerate(cell.blocks):
        depth[2 + j] = 1 + max(depth[b.input_a], depth[b.input_b])
    return [depth[2 + j] for j in range(len(cell.blocks))]


def draw_cell(
    cell: Cell | CellSpec | str | dict,
    path: str | Path,
    *,
    concat: str = "unused",
    title: str | None = None,
    reduction: bool = False,
) -> Path:
    """A cell (or a CellSpec's normal cell; ``reduction=True``: its reduction cell) as a graph
    of blocks (see the module docstring). ``concat`` is the output rule of a bare Cell."""
    if not isinstance(cell, Cell):
        s = _as_spec(cell)
        if not isinstance(s, CellSpec):
            raise SpecError(f"draw_cell: a {s.kind!r} spec; use draw_layer_network")
        concat = s.concat
        title = title or (f"{'reduction' if reduction else 'normal'} cell {s.spec_hash}")
        cell = s.reduction_cell if reduction else s.normal
    depths = _block_depths(cell)
    levels: dict[int, list[int]] = {}
    for j, d in enumerate(depths):
        levels.setdefault(d, []).append(j)
    top = max(depths, default=0)
    width = max([2, *(len(v) for v in levels.values())])
    pos: dict[int, tuple[float, float]] = {0: (-1.0, 0.0), 1: (1.0, 0.0)}
    for d, blocks in levels.items():
        for k, j in enumerate(blocks):
            x = (k - (len(blocks) - 1) / 2) * 2.2
            pos[2 + j] = (x, -1.6 * d)
    out = (0.0, -1.6 * (top + 1))
    fig = new_figure(max(4.5, 2.0 * width + 1.5), 1.25 * (top + 2) + 1.0)
    ax = fig.add_subplot()
    _node(ax, *pos[0], "h[-2]", "#e8e8e8")
    _node(ax, *pos[1], "h[-1]", "#e8e8e8")
    for j, b in enumerate(cell.blocks):
        _node(ax, *pos[2 + j], f"block{j}\n+", "#cfe2f3")
        same = b.input_a == b.input_b
        _edge(ax, pos[b.input_a], pos[2 + j], -0.25 if same else 0.0, b.op_a)
        _edge(ax, pos[b.input_b], pos[2 + j], 0.25 if same else 0.0, b.op_b)
    _node(ax, *out, "concat", "#d9ead3")
    for src in cell.output_sources(concat):
        _edge(ax, pos[src], out, 0.0, None, color="#2a7a2a")
    xs = [p[0] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.4, max(xs) + 1.4)
    ax.set_ylim(out[1] - 0.7, 0.7)
    ax.axis("off")
    ax.set_title(title or f"cell ({len(cell.blocks)} blocks, concat={concat})", fontsize=9)
    return save(fig, path)


def draw_spec(spec: Any, path: str | Path, title: str | None = None) -> list[Path]:
    """Draw any spec: a layer network, or a cell spec's normal (and separate reduction) cell;
    returns the written paths (a cell spec with a reduction cell gives two files)."""
    s = _as_spec(spec)
    p = Path(path)
    if isinstance(s, LayerSpec):
        return [draw_layer_network(s, p, title=title)]
    if isinstance(s, CellSpec):
        out = [draw_cell(s, p, title=title)]
        if s.reduction is not None:
            out.append(draw_cell(s, p.with_name(p.stem + "_reduction" + p.suffix), reduction=True))
        return out
    raise SpecError(f"drawing: no drawing for spec kind {s.kind!r}")
