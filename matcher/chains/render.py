"""The chain as a picture (SVG) for the workbench and reports: links in columns from upstream to downstream,
arrows where one link feeds another, each box with the link's bilingual name and its counts of park
enterprises, resources, needs and prospects; gaps outlined in red with their rank."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from matcher.domain.chain_schemas import ChainPublic, LinkPublic

BOX_W, BOX_H, COL_GAP, ROW_GAP, MARGIN, TOP = 270, 92, 80, 22, 30, 96
STAGE_COLUMN = {"upstream": 0, "midstream": 1, "downstream": 2}
STAGE_TITLE = {0: "上游 Upstream", 1: "中游 Midstream", 2: "下游 Downstream"}
FONT = "Noto Sans CJK SC, Source Han Sans SC, PingFang SC, Microsoft YaHei, sans-serif"


def _columns(links: list[LinkPublic]) -> tuple[dict[str, int], dict[int, str]]:
    """Each link's column: its stage when the chain uses stages, else its depth in the chain."""
    if any(link.stage for link in links):
        col = {x.key: STAGE_COLUMN[x.stage] if x.stage else min(x.depth, 2) for x in links}
        return col, STAGE_TITLE
    col = {x.key: x.depth for x in links}
    return col, {d: f"第 {d + 1} 层 Level {d + 1}" for d in set(col.values())}


def _text(x: float, y: float, s: str, size: int, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}"{extra}>{escape(s)}</text>'


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _box(link: LinkPublic, x: float, y: float, gap_rank: int | None) -> list[str]:
    zh, en = counts_lines(link)
    stroke, fill, width = ("#d32f2f", "#fff5f5", 2.5) if gap_rank else ("#4a6fa5", "#f4f8fd", 1.2)
    out = [
        f'<g class="link" data-key="{escape(link.key)}">',
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>',
        _text(x + 10, y + 22, _clip(link.name_zh, 14), 15, font_weight="bold", fill="#1d2b3a"),
        _text(x + 10, y + 40, _clip(link.name_en, 30), 11, fill="#55606e"),
        _text(x + 10, y + 60, zh, 12, fill="#1d2b3a"),
        _text(x + 10, y + 78, en, 9, fill="#55606e"),
    ]
    if gap_rank:
        out.append(
            _text(
                x + BOX_W - 10,
                y + 22,
                f"缺口 Gap #{gap_rank}",
                12,
                fill="#d32f2f",
                text_anchor="end",
                font_weight="bold",
            )
        )
    out.append("</g>")
    return out


@dataclass(frozen=True)
class Layout:
    """Where everything goes, shared by the SVG and the PNG (matcher/chains/picture.py) so both draw one map."""

    width: int
    height: int
    ncols: int
    titles: dict[int, str]
    pos: dict[str, tuple[float, float]]  # link key -> top-left corner of its box
    gap_rank: dict[str, int]


def layout(chain: ChainPublic) -> Layout:
    links = chain.links
    col, titles = _columns(links)
    ncols = max(col.values(), default=0) + 1
    rows: dict[int, int] = {}
    pos: dict[str, tuple[float, float]] = {}
    for link in links:
        c = col[link.key]
        r = rows.get(c, 0)
        rows[c] = r + 1
        pos[link.key] = (MARGIN + c * (BOX_W + COL_GAP), TOP + r * (BOX_H + ROW_GAP))
    width = MARGIN * 2 + ncols * BOX_W + (ncols - 1) * COL_GAP
    height = TOP + max(rows.values(), default=1) * (BOX_H + ROW_GAP) + 60
    return Layout(width, height, ncols, titles, pos, {g.key: g.rank for g in chain.gaps})


def arrow_ends(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float, float, float]:
    """Where an arrow from the box at (x1, y1) to the box at (x2, y2) leaves and arrives."""
    if x2 <= x1:  # a link feeding one in its own or an earlier column: leave from the bottom
        return x1 + BOX_W / 2, y1 + BOX_H, x2 + BOX_W / 2, y2
    return x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2


def counts_lines(link: LinkPublic) -> tuple[str, str]:
    """The box's counts, in Chinese and in English."""
    n = {k: link.counts.get(k, 0) for k in ("enterprises", "resources", "needs", "prospects")}
    return (
        f"企业 {n['enterprises']} · 资源 {n['resources']} · 需求 {n['needs']} · 潜在 {n['prospects']}",
        f"enterprises {n['enterprises']} · resources {n['resources']} · needs {n['needs']} · prospects {n['prospects']}",
    )


def legend(chain: ChainPublic) -> str:
    n_gaps = len(chain.gaps)
    return (
        f"红框为缺口环节（少于 {chain.gap_threshold} 家园区企业），共 {n_gaps} 个 · red: gaps (fewer than "
        f"{chain.gap_threshold} park enterprises), {n_gaps} in all"
    )


def chain_svg(chain: ChainPublic) -> str:
    """One standalone SVG document of the chain."""
    links = chain.links
    lay = layout(chain)
    width, height, titles, pos = lay.width, lay.height, lay.titles, lay.pos
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}">',
        f"<title>{escape(chain.name_zh)} {escape(chain.name_en)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#7a8796"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        _text(MARGIN, 34, f"{chain.name_zh}  {chain.name_en}", 20, font_weight="bold", fill="#1d2b3a"),
    ]
    for c in range(lay.ncols):
        if c in titles:
            parts.append(
                _text(
                    MARGIN + c * (BOX_W + COL_GAP) + BOX_W / 2,
                    TOP - 16,
                    titles[c],
                    13,
                    text_anchor="middle",
                    fill="#55606e",
                )
            )
    for link in links:
        x1, y1 = pos[link.key]
        for target in link.feeds:
            if target not in pos:
                continue
            x2, y2 = pos[target]
            sx, sy, ex, ey = arrow_ends(x1, y1, x2, y2)
            mid = (sx + ex) / 2
            parts.append(
                f'<path d="M {sx:.0f} {sy:.0f} C {mid:.0f} {sy:.0f}, {mid:.0f} {ey:.0f}, {ex:.0f} {ey:.0f}" '
                'fill="none" stroke="#7a8796" stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
    for link in links:
        parts += _box(link, *pos[link.key], lay.gap_rank.get(link.key))
    parts.append(_text(MARGIN, height - 22, legend(chain), 11, fill="#55606e"))
    parts.append("</svg>")
    return "\n".join(parts)
