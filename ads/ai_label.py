"""The visible "AI生成" / "AI-generated" label of a creative, placed where it covers nothing.

GB 45438-2025 asks an AI-generated image published in China to show a text label a
person can read, at least 5% of the image's shortest side tall. The label goes in
the first corner (bottom right, bottom left, top right, top left) where its box
overlaps neither the product nor any copy box of the layout (ads/creative.py's
`layout`); its glyphs' ink is at least `MIN_SHARE` of the shortest side tall (and
`MIN_PIXELS`, so a 90 px banner's label stays readable).
"""

import math

from adgan import fonts

TEXTS = {"zh": "AI生成", "en": "AI-generated"}
MIN_SHARE = 0.05
MIN_PIXELS = 9
FILL, INK = (238, 238, 240), (70, 70, 76)
CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")


class NoRoom(ValueError):
    """No corner of the layout is free for the label (a layout bug: every template and size
    leaves one, tests/ads/test_creative.py)."""


def min_height(shortest_side):
    """Pixels the label's ink must be tall at least: `MIN_SHARE` of the shortest side, and
    `MIN_PIXELS`."""
    return max(MIN_PIXELS, math.ceil(MIN_SHARE * shortest_side))


def label_font(text, draw, shortest_side):
    """(font, ink box at the origin): the smallest font size whose ink of `text` is at least
    `min_height` tall."""
    needed = min_height(shortest_side)
    size = needed
    while True:
        font = fonts.load(size)
        ink = draw.textbbox((0, 0), text, font=font)
        if ink[3] - ink[1] >= needed:
            return font, ink
        size += 1


def overlaps(a, b):
    """True if boxes (left, top, right, bottom) share any pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def corner_box(corner, box_size, canvas_size, inset):
    """The box of `box_size` (w, h) in a corner of the canvas, `inset` px from its edges."""
    (w, h), (width, height) = box_size, canvas_size
    left = width - inset - w if corner.endswith("right") else inset
    top = height - inset - h if corner.startswith("bottom") else inset
    return (left, top, left + w, top + h)


def place(box_size, canvas_size, occupied, inset):
    """(corner, box): the first corner whose box overlaps no box in `occupied`; `NoRoom`
    when none is free."""
    for corner in CORNERS:
        box = corner_box(corner, box_size, canvas_size, inset)
        if not any(overlaps(box, other) for other in occupied):
            return corner, box
    raise NoRoom(f"no free corner for a {box_size[0]}x{box_size[1]} label on a "
                 f"{canvas_size[0]}x{canvas_size[1]} canvas")


def draw_label(draw, language, canvas_size, occupied):
    """Draw the label in the copy's language ("zh"/"en") on the canvas behind `draw`, in a
    corner clear of the `occupied` boxes; returns what the sidecar records."""
    text = TEXTS[language]
    shortest = min(canvas_size)
    font, ink = label_font(text, draw, shortest)
    pad = max(2, round((ink[3] - ink[1]) * 0.3))
    box_size = (ink[2] - ink[0] + 2 * pad, ink[3] - ink[1] + 2 * pad)
    corner, box = place(box_size, canvas_size, occupied, max(2, round(shortest * 0.01)))
    draw.rounded_rectangle(box, radius=pad, fill=FILL)
    origin = (box[0] + pad - ink[0], box[1] + pad - ink[1])  # the ink's top left at the padding
    draw.text(origin, text, fill=INK, font=font)
    text_box = draw.textbbox(origin, text, font=font)
    return {"shown": True, "text": text, "corner": corner, "box": list(box),
            "text_box": list(text_box), "text_height": text_box[3] - text_box[1],
            "min_height": min_height(shortest)}
