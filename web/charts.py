"""Charts drawn on the server as inline SVG: no script, no charting library, nothing fetched.

Each bar carries a <title>, which browsers show as a tooltip, so the exact
figures are there without JavaScript.
"""
from __future__ import annotations

from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 30  # room for the axis labels
STATUS_COLORS = {"succeeded": "#2e7d32", "failed": "#c62828", "interrupted": "#ef6c00",
                 "abandoned": "#6d4c41", "running": "#1565c0", "skipped": "#9e9e9e"}


def _nice_max(value: int) -> int:
    """The axis top: the data's maximum rounded up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if value <= step * factor:
                return step * factor
        step *= 10


def _frame(label: str, top: int, body: list[str], x_labels: list[tuple[float, str]]) -> Markup:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>']
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        value = top * fraction
        text = f"{value:g}" if value == int(value) else f"{value:.1f}"
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#555">{escape(text)}</text>')
    parts += body
    for n, (x, text) in enumerate(x_labels):
        # The outer labels lean inwards so that they are not cut at the edges.
        anchor = "start" if n == 0 and len(x_labels) > 1 else "end" if n == len(x_labels) - 1 and n else "middle"
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}" font-size="11" '
                     f'fill="#555">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _label_positions(n: int, max_labels: int = 6) -> list[int]:
    if n <= max_labels:
        return list(range(n))
    step = (n - 1) / (max_labels - 1)
    return sorted({round(i * step) for i in range(max_labels)})


def bar_chart(label: str, points: list[tuple[str, int]], color: str = "#1565c0") -> Markup:
    """One bar per point, e.g. articles per day; `label` is the chart's accessible name."""
    if not points:
        return Markup(f'<p class="empty">{escape(label)}: no data yet.</p>')
    top = _nice_max(max(v for _, v in points))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(points)
    bar_w = max(1.0, slot * 0.8)
    body = []
    for i, (name, value) in enumerate(points):
        h = plot_h * value / top
        x = LEFT + i * slot + (slot - bar_w) / 2
        body.append(f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" '
                    f'height="{h:.1f}" fill="{color}"><title>{escape(name)}: {value}</title></rect>')
    x_labels = [(LEFT + i * slot + slot / 2, points[i][0]) for i in _label_positions(len(points))]
    return _frame(label, top, body, x_labels)


def stacked_chart(label: str, columns: list[tuple[str, str, list[tuple[str, int]]]],
                  colors: dict[str, str]) -> Markup:
    """One stacked bar per column (name, status, [(series, value)…]); a strip under it shows the status."""
    if not columns:
        return Markup(f'<p class="empty">{escape(label)}: no data yet.</p>')
    top = _nice_max(max(sum(v for _, v in parts) for _, _, parts in columns))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(columns)
    bar_w = max(2.0, min(slot * 0.7, 40))
    body = []
    for i, (name, status, parts) in enumerate(columns):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = TOP + plot_h
        for series, value in parts:
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            body.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                        f'fill="{colors.get(series, "#888")}"><title>{escape(name)} — {escape(series)}: '
                        f'{value}</title></rect>')
        body.append(f'<rect class="status" x="{x:.1f}" y="{TOP + plot_h + 2}" width="{bar_w:.1f}" height="5" '
                    f'fill="{STATUS_COLORS.get(status, "#9e9e9e")}"><title>{escape(name)}: '
                    f'{escape(status)}</title></rect>')
    x_labels = [(LEFT + i * slot + slot / 2, columns[i][0]) for i in _label_positions(len(columns))]
    return _frame(label, top, body, x_labels)
