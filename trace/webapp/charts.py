"""Bar charts drawn on the server as SVG: no script, readable by a screen reader as a table."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from ocop_trace import i18n

WIDTH, HEIGHT, AXIS = 600, 180, 24


def bars(
    points: Sequence[tuple[str, int]], lang: str, title_key: str = "app.chart.scans"
) -> Markup:
    """One bar per (label, value); a day label (ISO date) is shown dd/mm. The same numbers
    follow as a visually hidden list, for those who cannot see the bars."""
    top = max((v for _, v in points), default=0) or 1
    step = WIDTH / max(len(points), 1)
    title = escape(i18n.t(lang, title_key))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + AXIS}" role="img" '
        f'aria-label="{title}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="0" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}" stroke="#4a4a4a"/>',
    ]
    for i, (label, value) in enumerate(points):
        height = HEIGHT * value / top
        x = i * step + step * 0.15
        name = escape(_short(label))
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - height:.1f}" width="{step * 0.7:.1f}" '
            f'height="{height:.1f}" fill="#1d4f91"><title>{escape(label)}: {value}</title></rect>'
        )
        if len(points) <= 12 or i % 5 == 0 or i == len(points) - 1:
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT + 16}" font-size="12" fill="#111">{name}</text>'
            )
    parts.append(f'<text x="4" y="14" font-size="12" fill="#111">{top}</text></svg>')
    return Markup("".join(parts))  # noqa: S704  (numbers and escaped labels only)


def _short(label: str, room: int = 14) -> str:
    """A day as dd/mm; a longer word cut to fit under its bar (whole in the bar's title)."""
    if len(label) == 10 and label[4] == "-":
        return f"{label[8:10]}/{label[5:7]}"
    return label if len(label) <= room else label[: room - 1] + "…"
