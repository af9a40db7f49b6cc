"""Bundles: two or three products on one white canvas, with captions that name each one.

Shops sell bundles ("一杯咖啡和一块蛋糕", "a burger with fries"), but every picture of
the shipped set holds one product. `compose` lays products out the way a designer
lays out a bundle (side by side, overlapping a little, one in front of the other),
`bundle_caption` names them with the connectors shoppers type (和, 与, 配, 加; and,
with, &), and `is_held_out` keeps a fixed share of concept *pairs* out of training,
so that a two-object measure on them tests composition rather than memory.
`sample_bundle` draws the rows of one training bundle; `halves` cuts a picture for
the two-object measure (`metrics.two_object_rate`).

This is the data side of the composition work (issue 15); the loader and the
model do not use it yet.
"""

import hashlib

import numpy as np
from PIL import Image

from helpers import has_han

CONNECTORS = {"zh": ("和", "与", "配", "加"), "en": (" and ", " with ", " & ")}
LAYOUTS = ("side_by_side", "overlap", "front_back")
HELD_OUT_SHARE = 0.1  # of all concept pairs, never composed for training


def placements(layout, count, size, rng):
    """[(left, top, side)] boxes of `count` products on a `size` canvas, back to front."""
    jitter = lambda: int(rng.integers(-size // 32, size // 32 + 1))  # noqa: E731
    if layout == "side_by_side":
        side = int(size * 0.94 / count)
        gap = (size - side * count) // (count + 1)
        return [(gap + i * (side + gap) + jitter(), (size - side) // 2 + jitter(), side)
                for i in range(count)]
    if layout == "overlap":  # each covers the previous one's edge by a fifth
        side = int(size / (1 + 0.8 * (count - 1)))
        step = int(side * 0.8)
        return [(i * step, (size - side) // 2 + jitter(), side) for i in range(count)]
    if layout == "front_back":  # the first large at the back, the others smaller in front
        back = int(size * 0.7)
        boxes = [(jitter() + size // 40, jitter() + size // 40, back)]
        front = int(size * 0.5)
        for i in range(1, count):
            boxes.append((size - front - (i - 1) * front // 2 - size // 40,
                          size - front - size // 40, front))
        return boxes
    raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")


def compose(products, layout, size, rng):
    """uint8 RGBA products [K, S, S, 4] (K = 2 or 3; alpha marks the product) -> one uint8 RGB
    picture [size, size, 3] on white, the products in `placements` order (the first at the
    back)."""
    canvas = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    for product, (left, top, side) in zip(products, placements(layout, len(products), size, rng)):
        picture = Image.fromarray(np.asarray(product, np.uint8), "RGBA").resize(
            (side, side), Image.Resampling.LANCZOS)
        left, top = int(np.clip(left, 0, size - side)), int(np.clip(top, 0, size - side))
        canvas.alpha_composite(picture, (left, top))
    return np.asarray(canvas.convert("RGB"))


def bundle_caption(names, rng):
    """The products' names joined the way shoppers write a bundle, in the names' language:
    ["咖啡", "蛋糕"] -> "咖啡和蛋糕" (or 与, 配, 加); ["coffee", "cake"] -> "coffee and cake"
    (or with, &); three names: "A、B和C" / "A, B and C"."""
    language = "zh" if all(has_han(name) for name in names) else "en"
    connector = CONNECTORS[language][int(rng.integers(len(CONNECTORS[language])))]
    head, last = names[:-1], names[-1]
    listed = ("、" if language == "zh" else ", ").join(head)
    return f"{listed}{connector}{last}"


def is_held_out(first, second, share=HELD_OUT_SHARE):
    """True for the fixed `share` of concept pairs kept out of training (either order)."""
    pair = "\n".join(sorted((first, second))).encode("utf-8")
    return int.from_bytes(hashlib.sha256(pair).digest()[:8], "big") / 2 ** 64 < share


def sample_bundle(concepts, styles, rng, count=2, held_out=False, tries=100):
    """Row indices of one bundle: `count` rows of distinct concepts in one style, whose
    concept pairs are all training pairs (or, with `held_out`, include a held-out one).

    concepts, styles: one string a row (its product name, its drawing style).
    Raises ValueError when `tries` draws find none (too few concepts in any style).
    """
    concepts, styles = np.asarray(concepts), np.asarray(styles)
    for _ in range(tries):
        first = int(rng.integers(len(concepts)))
        others = np.flatnonzero((styles == styles[first]) & (concepts != concepts[first]))
        if len(others) < count - 1:
            continue
        rows = [first, *rng.choice(others, count - 1, replace=False).tolist()]
        if len(set(concepts[rows])) < count:
            continue
        pairs = [(concepts[a], concepts[b]) for i, a in enumerate(rows) for b in rows[i + 1:]]
        if any(is_held_out(a, b) for a, b in pairs) == held_out:
            return rows
    raise ValueError(f"no bundle of {count} distinct concepts in one style found in {tries} "
                     "draws")


def halves(images):
    """uint8 pictures [N, S, S, 3] -> their left and right halves, each centred on a white
    square [N, 2, S, S, 3], for an image encoder to read one product at a time."""
    images = np.asarray(images, np.uint8)
    count, size = images.shape[0], images.shape[1]
    out = np.full((count, 2, size, size, 3), 255, np.uint8)
    half, offset = size // 2, size // 4
    out[:, 0, :, offset:offset + half] = images[:, :, :half]
    out[:, 1, :, offset:offset + half] = images[:, :, size - half:]
    return out
