"""The chain map as a PNG, for reports and slides that take no SVG: the same layout as render.py's SVG (columns
by stage, arrows, boxes with names and counts, gaps in red), drawn with matplotlib's Agg renderer.

Why matplotlib: its wheels carry their own rasteriser and fonts, so the PNG needs no system library (cairosvg
needs libcairo, which a slim image lacks). Chinese needs a CJK font: the first installed one of CJK_FAMILIES is
used; without one the picture is written in English (each link's English name, else its key), never in boxes
of missing glyphs."""

from __future__ import annotations

import io
import logging
import re
import threading
import warnings
from functools import lru_cache

from matcher.chains.render import (
    BOX_H,
    BOX_W,
    COL_GAP,
    MARGIN,
    TOP,
    arrow_ends,
    counts_lines,
    layout,
    legend,
)
from matcher.domain.chain_schemas import ChainPublic, LinkPublic

PNG_TYPE = "image/png"
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "PingFang SC",
    "SimHei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "Noto Sans CJK JP",
)
DPI = 100
PT = 72 / DPI  # an SVG pixel in points at DPI
_LOCK = threading.Lock()  # matplotlib's text caches are shared between figures


@lru_cache(maxsize=1)
def cjk_family() -> str | None:
    """The first CJK font family matplotlib can find on this machine, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FAMILIES if name in installed), None)


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


class _Words:
    """The picture's words: both languages with a CJK font, English alone without one."""

    def __init__(self, chinese: bool) -> None:
        self.chinese = chinese

    def title(self, chain: ChainPublic) -> str:
        return f"{chain.name_zh}  {chain.name_en}" if self.chinese else (chain.name_en or f"chain {chain.id}")

    def column(self, title: str) -> str:
        english = re.search(r"[A-Za-z].*$", title)
        return title if self.chinese or english is None else english.group(0)

    def names(self, link: LinkPublic) -> tuple[str, str]:
        if self.chinese:
            return _clip(link.name_zh, 14), _clip(link.name_en, 30)
        return _clip(link.name_en or link.key, 30), f"[{link.key}]"

    def legend(self, chain: ChainPublic) -> str:
        text = legend(chain)
        return text if self.chinese else text.split(" · ", 1)[-1]


def chain_png(chain: ChainPublic) -> bytes:
    """One PNG of the chain, the size of the SVG at 100 dpi."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path

    # a CJK font without a bold face is used at its regular weight: said once per text otherwise
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    lay = layout(chain)
    family = cjk_family()
    words = _Words(family is not None)
    fonts = [family, "DejaVu Sans"] if family else ["DejaVu Sans"]
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a glyph no font has is left out, not reported per character
        fig = Figure(figsize=(lay.width / DPI, lay.height / DPI), dpi=DPI, facecolor="white")
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, lay.width)
        ax.set_ylim(lay.height, 0)  # y grows downwards, as in the SVG
        ax.set_axis_off()

        def text(x: float, y: float, s: str, size: float, **kw: object) -> None:
            ax.text(x, y, s, fontsize=size * PT, family=fonts, va="baseline", **kw)  # type: ignore[arg-type]

        text(MARGIN, 34, words.title(chain), 20, weight="bold", color="#1d2b3a")
        for c, title in lay.titles.items():
            x = MARGIN + c * (BOX_W + COL_GAP) + BOX_W / 2
            text(x, TOP - 16, words.column(title), 13, ha="center", color="#55606e")
        for link in chain.links:
            x1, y1 = lay.pos[link.key]
            for target in link.feeds:
                if target not in lay.pos:
                    continue
                sx, sy, ex, ey = arrow_ends(x1, y1, *lay.pos[target])
                mid = (sx + ex) / 2
                curve = Path([(sx, sy), (mid, sy), (mid, ey), (ex, ey)], [1, 4, 4, 4])
                ax.add_patch(
                    FancyArrowPatch(path=curve, arrowstyle="-|>", mutation_scale=12, color="#7a8796", lw=1.5)
                )
        for link in chain.links:
            x, y = lay.pos[link.key]
            rank = lay.gap_rank.get(link.key)
            stroke, fill, width = ("#d32f2f", "#fff5f5", 2.5) if rank else ("#4a6fa5", "#f4f8fd", 1.2)
            ax.add_patch(
                FancyBboxPatch(
                    (x, y), BOX_W, BOX_H, boxstyle="round,pad=0,rounding_size=8", fc=fill, ec=stroke, lw=width
                )
            )
            first, second = words.names(link)
            zh, en = counts_lines(link)
            text(x + 10, y + 22, first, 15 if words.chinese else 13, weight="bold", color="#1d2b3a")
            text(x + 10, y + 40, second, 11, color="#55606e")
            if words.chinese:
                text(x + 10, y + 60, zh, 12, color="#1d2b3a")
                text(x + 10, y + 78, en, 9, color="#55606e")
            else:
                text(x + 10, y + 66, en, 9, color="#1d2b3a")
            if rank:
                label = f"缺口 Gap #{rank}" if words.chinese else f"Gap #{rank}"
                text(x + BOX_W - 10, y + 22, label, 12, ha="right", weight="bold", color="#d32f2f")
        text(MARGIN, lay.height - 22, words.legend(chain), 11, color="#55606e")
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=DPI, facecolor="white")
    return out.getvalue()
