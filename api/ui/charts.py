"""Charts drawn by the app as SVG (no script, no outside file): a funnel per category and a plain bar chart.
Each chart has a title and a description for screen readers; the page shows the same numbers as a table."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from markupsafe import Markup, escape

COLORS = {"shown": "#9fb3c8", "contacted": "#0b69a3", "deals": "#1b7a3a"}
ROW = 18  # height of one bar
LABEL_W = 150
BAR_W = 420


def funnel_chart(
    title: str, groups: Sequence[tuple[str, dict[str, int]]], stage_labels: dict[str, str]
) -> Markup:
    """One group per kind or month: shown -> contacted -> deals, each bar as long as its share of the group's
    shown (a funnel), with its count written beside it."""
    stages = ("shown", "contacted", "deals")
    height = max(1, len(groups)) * (ROW * len(stages) + 14) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {LABEL_W + BAR_W + 90} {height}" role="img" '
        f'aria-labelledby="t-{zlib.crc32(title.encode())}"><title id="t-{zlib.crc32(title.encode())}">{escape(title)}</title>'
    ]
    y = 8
    for name, counts in groups:
        top = max(1, int(counts.get("shown", 0)))
        parts.append(f'<text x="0" y="{y + ROW + 4}" font-size="13" fill="#1f2933">{escape(name)}</text>')
        for stage in stages:
            value = int(counts.get(stage, 0))
            width = max(1.0, BAR_W * value / top) if value else 0
            parts.append(
                f'<rect x="{LABEL_W}" y="{y}" width="{width:.1f}" height="{ROW - 4}" fill="{COLORS[stage]}">'
                f"<title>{escape(name)} · {escape(stage_labels[stage])}: {value}</title></rect>"
            )
            parts.append(
                f'<text x="{LABEL_W + width + 6:.1f}" y="{y + ROW - 7}" font-size="12" fill="#3e4c59">'
                f"{escape(stage_labels[stage])} {value}</text>"
            )
            y += ROW
        y += 14
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(title: str, bars: Sequence[tuple[str, int]], color: str = "#b42318") -> Markup:
    top = max([v for _, v in bars] + [1])
    height = max(1, len(bars)) * (ROW + 4) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {LABEL_W + BAR_W + 60} {height}" role="img" '
        f'aria-labelledby="t-{zlib.crc32(title.encode())}"><title id="t-{zlib.crc32(title.encode())}">{escape(title)}</title>'
    ]
    y = 6
    for name, value in bars:
        width = max(1.0, BAR_W * value / top)
        parts.append(f'<text x="0" y="{y + ROW - 6}" font-size="13" fill="#1f2933">{escape(name)}</text>')
        parts.append(
            f'<rect x="{LABEL_W}" y="{y}" width="{width:.1f}" height="{ROW - 4}" fill="{color}"></rect>'
        )
        parts.append(
            f'<text x="{LABEL_W + width + 6:.1f}" y="{y + ROW - 6}" font-size="12" fill="#3e4c59">{value}</text>'
        )
        y += ROW + 4
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_chart(
    title: str, rows: Sequence[tuple[str, dict[str, int]]], series: Sequence[tuple[str, str, str]]
) -> Markup:
    """One bar per row (a chain's link), split into its series (tiers), each part as long as its count on a
    scale shared by all rows; the counts are written beside the bar. `series`: (key, label, colour)."""
    top = max([sum(counts.get(k, 0) for k, _, _ in series) for _, counts in rows] + [1])
    height = max(1, len(rows)) * (ROW + 8) + 34
    tid = f"t-{zlib.crc32(title.encode())}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {LABEL_W + BAR_W + 160} {height}" role="img" '
        f'aria-labelledby="{tid}"><title id="{tid}">{escape(title)}</title>'
    ]
    x = LABEL_W
    for _key, label, color in series:  # the legend
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{color}"></rect>')
        parts.append(f'<text x="{x + 16}" y="14" font-size="12" fill="#3e4c59">{escape(label)}</text>')
        x += 28 + 12 * len(label)
    y = 28
    for name, counts in rows:
        parts.append(f'<text x="0" y="{y + ROW - 6}" font-size="13" fill="#1f2933">{escape(name)}</text>')
        x0 = float(LABEL_W)
        words = []
        for key, label, color in series:
            value = int(counts.get(key, 0))
            if value:
                width = BAR_W * value / top
                parts.append(
                    f'<rect x="{x0:.1f}" y="{y}" width="{width:.1f}" height="{ROW - 4}" fill="{color}">'
                    f"<title>{escape(name)} · {escape(label)}: {value}</title></rect>"
                )
                x0 += width
            words.append(str(value))
        parts.append(
            f'<text x="{x0 + 6:.1f}" y="{y + ROW - 6}" font-size="12" fill="#3e4c59">{" / ".join(words)}</text>'
        )
        y += ROW + 8
    parts.append("</svg>")
    return Markup("".join(parts))
