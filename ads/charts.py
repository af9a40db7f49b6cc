"""Small PNG charts drawn with Pillow (no plotting library): the CTR report's picture."""

import numpy as np
from PIL import Image, ImageDraw

from adgan import fonts

INK, GRID, BAR, BEST, CURVE, OTHER = ((40, 40, 40), (225, 225, 225), (90, 140, 210),
                                      (230, 120, 40), (200, 60, 60), (150, 150, 150))


def bar_panel(draw, box, labels, values, lows, highs, title, font, highlight=None):
    """Horizontal bars with interval whiskers inside box (left, top, right, bottom)."""
    left, top, right, bottom = box
    draw.text((left, top), title, fill=INK, font=font)
    top += int(font.size * 1.8)
    label_width = max(draw.textlength(label, font=font) for label in labels) + 12
    axis = left + label_width
    scale = (right - axis - 70) / max(max(highs), 1e-9)
    row = (bottom - top) / max(len(labels), 1)
    for i, (label, value, low, high) in enumerate(zip(labels, values, lows, highs)):
        y = top + i * row
        middle = y + row / 2
        draw.text((left, middle - font.size / 2), label, fill=INK, font=font)
        color = BEST if i == highlight else BAR
        draw.rectangle((axis, y + row * 0.2, axis + value * scale, y + row * 0.8), fill=color)
        draw.line((axis + low * scale, middle, axis + high * scale, middle), fill=INK, width=2)
        for x in (low, high):
            draw.line((axis + x * scale, middle - row * 0.15, axis + x * scale,
                       middle + row * 0.15), fill=INK, width=2)
        draw.text((axis + high * scale + 6, middle - font.size / 2), f"{100 * value:.2f}%",
                  fill=INK, font=font)


def curve_panel(draw, box, series, title, font):
    """Line chart of {name: (values, color)} inside box, y from 0 to the largest value."""
    left, top, right, bottom = box
    draw.text((left, top), title, fill=INK, font=font)
    top += int(font.size * 1.8)
    peak = max(max(values) for values, _ in series.values()) or 1.0
    count = max(len(values) for values, _ in series.values())
    draw.rectangle((left, top, right, bottom), outline=GRID)
    legend_y = top + 4
    for name, (values, color) in series.items():
        xs = left + np.arange(len(values)) * (right - left) / max(count - 1, 1)
        ys = bottom - np.asarray(values) / peak * (bottom - top - 8)
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=color, width=3)
        draw.text((left + 8, legend_y), f"{name}: {values[-1]:,.1f}", fill=color, font=font)
        legend_y += font.size + 4


def ctr_chart(report, width=1000):
    """The CTR report's picture: CTR per creative with Wilson intervals, Thompson's next
    shares, and (for a simulation) the regret curve."""
    font = fonts.load(18)
    creatives = report["creatives"]
    labels = [c["creative"] for c in creatives]
    best = int(np.argmax([c["ctr"] for c in creatives]))
    row_height = 34
    panel = 60 + row_height * len(labels)
    height = 2 * panel + 40 + (280 if "simulation" in report else 0)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    bar_panel(draw, (20, 20, width - 20, 20 + panel - 30), labels,
              [c["ctr"] for c in creatives], [c["ctr_low"] for c in creatives],
              [c["ctr_high"] for c in creatives], "CTR per creative (Wilson 95%)", font, best)
    shares = [report["next_allocation"][label] for label in labels]
    bar_panel(draw, (20, 20 + panel, width - 20, 20 + 2 * panel - 30), labels, shares, shares,
              shares, "Next period's traffic (Thompson sampling)", font,
              int(np.argmax(shares)))
    if "simulation" in report:
        simulation = report["simulation"]
        curve_panel(draw, (20, 2 * panel + 20, width - 20, height - 20),
                    {"Thompson sampling": (simulation["regret"], CURVE),
                     "even split": (simulation["uniform_regret"], OTHER)},
                    "Cumulative regret (expected clicks lost), by period", font)
    return image
