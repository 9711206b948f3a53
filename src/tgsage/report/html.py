"""One self-contained HTML page: PNGs embedded as base64 data URIs, tables as escaped HTML,
a small inline stylesheet, no scripts and no external references - it can be mailed, archived
or opened offline."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tgsage.errors import InputError

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em;border-bottom:2px solid #ccc;padding-bottom:.3em}
h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #e3e3e3}
p.meta{color:#666;font-size:.9em}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}
td.t,th.t{text-align:left;font-family:ui-monospace,monospace}
tr:nth-child(even) td{background:#fafafa}
"""


@dataclass
class Section:
    """A titled part of the page: a paragraph, figures (PNG paths) and/or a table."""

    title: str
    text: str | None = None
    images: Sequence[str | Path] = field(default_factory=list)
    table: Sequence[Mapping[str, Any]] | None = None
    captions: Sequence[str] | None = None


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return f"{v:.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table_html(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """An HTML table of dict rows (columns: the union of keys in first-seen order); every cell
    is escaped."""
    if not rows:
        return "<p><em>(no rows)</em></p>"
    if columns is None:
        seen: dict[str, None] = {}
        for r in rows:
            for k in r:
                seen.setdefault(str(k), None)
        columns = list(seen)
    text_cols = {c for c in columns if any(isinstance(r.get(c), str) for r in rows)}
    head = "".join(
        f'<th class="{"t" if c in text_cols else ""}">{html.escape(c)}</th>' for c in columns
    )
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="{"t" if c in text_cols else ""}">{html.escape(_fmt(r.get(c)))}</td>'
            for c in columns
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def image_html(path: str | Path, caption: str | None = None) -> str:
    """A <figure> with the PNG embedded as a data URI."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise InputError(f"{path}: not a PNG file; only PNG figures are embedded")
    b64 = base64.b64encode(data).decode("ascii")
    alt = html.escape(caption or Path(path).stem)
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{b64}">{cap}</figure>'


def _section(s: Section | Mapping[str, Any]) -> str:
    if isinstance(s, Mapping):
        s = Section(**s)
    parts = [f"<section><h2>{html.escape(s.title)}</h2>"]
    if s.text:
        parts += [f"<p>{html.escape(p)}</p>" for p in s.text.split("\n\n")]
    caps = list(s.captions or [])
    for i, img in enumerate(s.images):
        parts.append(image_html(img, caps[i] if i < len(caps) else None))
    if s.table is not None:
        parts.append(table_html(s.table))
    parts.append("</section>")
    return "\n".join(parts)


def write_html_report(
    path: str | Path,
    title: str,
    sections: Iterable[Section | Mapping[str, Any]],
    subtitle: str | None = None,
) -> Path:
    """Write ONE self-contained HTML file (see the module docstring) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(_section(s) for s in sections)
    meta = f'<p class="meta">{html.escape(subtitle)}</p>' if subtitle else ""
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body><h1>{html.escape(title)}</h1>{meta}\n{body}\n</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path
