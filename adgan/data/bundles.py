"""Bundles: two or three products on one white canvas, with captions that name each one.

Shops sell bundles ("一杯咖啡和一块蛋糕", "a burger with fries"), but every picture of
the shipped set holds one product. `composite_products` lays products out the way a designer
lays out a bundle (side by side, overlapping a little, one in front of the other),
`bundle_caption` names them with the connectors shoppers type (和, 与, 配, 加; and,
with, &), and `is_held_out` keeps a fixed share of concept *pairs* out of training,
so that a two-object measure on them tests composition rather than memory.
`sample_bundle` draws the rows of one training bundle, `BundleSource` makes the k-th
training bundle of a run (picture and caption; `data_loader.make_dataset` mixes them
into the batches), and `halves` cuts a picture for the two-object measure
(`metrics.two_object_rate`).
"""

import hashlib

import numpy as np
from PIL import Image

from adgan.data.styles import STYLE_WORD_RATE
from adgan.helpers import has_han

CONNECTORS = {"zh": ("和", "与", "配", "加"), "en": (" and ", " with ", " & ")}
LAYOUTS = ("side_by_side", "overlap", "front_back")
HELD_OUT_SHARE = 0.1  # of all concept pairs, never composed for training
LAYOUT_WEIGHTS = (0.5, 0.3, 0.2)  # of LAYOUTS: side by side is how most bundles are shown
THREE_RATE = 0.15  # bundles of three products
MEASURE_RATE = 0.3  # captions that count the products: "一杯热饮和一块水果蛋糕", "a dress and a bag"
# Chinese measure words by the manifest's `subgroup` (一个 elsewhere); names ending in a
# paired item's character take 一双.
MEASURE_WORDS = {"drink": "一杯", "food-sweet": "一块", "food-prepared": "一份",
                 "clothing": "一件", "computer": "一台", "phone": "一部", "book-paper": "一本"}
PAIRED = ("鞋", "袜", "手套", "筷子")
BUNDLE_ID_BASE = 1 << 30  # contrastive ids of bundles: each its own, above every concept's


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


def composite_products(products, layout, size, rng):
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
    """uint8 pictures [N, S, S, 3] -> the middle square of their left and right halves,
    enlarged to S x S [N, 2, S, S, 3] (side by side, each product fills about that square),
    for an image encoder to read one product at a time."""
    images = np.asarray(images, np.uint8)
    count, size = images.shape[0], images.shape[1]
    half, top = size // 2, size // 4
    out = np.empty((count, 2, size, size, 3), np.uint8)
    for i, picture in enumerate(images):
        for side, left in enumerate((0, size - half)):
            square = picture[top:top + half, left:left + half]
            out[i, side] = np.asarray(Image.fromarray(square).resize(
                (size, size), Image.Resampling.BICUBIC))
    return out


def counted(name, subgroup):
    """A product's name with its measure word: ("热饮", "drink") -> "一杯热饮",
    ("跑鞋", "clothing") -> "一双跑鞋", ("dress", _) -> "a dress", ("apple", _) -> "an apple"."""
    if has_han(name):
        word = "一双" if name.endswith(PAIRED) else MEASURE_WORDS.get(subgroup, "一个")
        return word + name
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


class BundleSource:
    """The k-th training bundle of a run, the same for the same seed and k: two (sometimes
    three) products of distinct concepts in one style, composed (`composite_products`) with
    a caption that names them in the order they stand, back or left first
    (`bundle_caption`).

    Args:
        products: uint8 RGBA [N, S, S, 4], one a row (alpha marks the product).
        names_en, names_zh: each row's product name in either language ("" = none: the
            other is used).
        subgroups: each row's `subgroup` (measure words), "" where unknown.
        styles: each row's drawing style; style_words: {style: (English, Chinese)} words
            put before about half of the captions, as single products get them.
        seed: the run's seed.

    Call: `k` -> (uint8 RGB [S, S, 3], caption bytes, style bytes, style id int32 (index in
    sorted(style_words), -1 for none), contrastive id int32 (BUNDLE_ID_BASE + k mod 2^30)).
    """

    def __init__(self, products, names_en, names_zh, subgroups, styles, style_words=None,
                 seed=0):
        self.products = np.asarray(products, np.uint8)
        self.names = {"en": [e or z for e, z in zip(names_en, names_zh)],
                      "zh": [z or e for e, z in zip(names_en, names_zh)]}
        self.concepts = np.array(self.names["en"], dtype=object)
        self.subgroups = list(subgroups)
        self.styles = np.asarray(styles, dtype=str)
        self.style_words = dict(style_words or {})
        self.seed = seed

    def caption(self, rows, rng):
        """The bundle's caption in Chinese or English (half each)."""
        language = ("zh", "en")[int(rng.integers(2))]
        names = [self.names[language][r] for r in rows]
        if rng.random() < MEASURE_RATE:
            names = [counted(name, self.subgroups[r]) for name, r in zip(names, rows)]
        text = bundle_caption(names, rng)
        style = self.styles[rows[0]]
        if style in self.style_words and rng.random() < STYLE_WORD_RATE:
            english, chinese = self.style_words[style]
            text = f"{chinese if has_han(text) else english} {text}"
        return text

    def __call__(self, k):
        rng = np.random.default_rng([self.seed, int(k)])
        count = 3 if rng.random() < THREE_RATE else 2
        rows = sample_bundle(self.concepts, self.styles, rng, count)
        layout = LAYOUTS[int(rng.choice(len(LAYOUTS), p=LAYOUT_WEIGHTS))]
        picture = composite_products(self.products[rows], layout, self.products.shape[1], rng)
        style = str(self.styles[rows[0]])
        style_id = sorted(self.style_words).index(style) if style in self.style_words else -1
        return (picture, self.caption(rows, rng).encode("utf-8"), style.encode("utf-8"),
                np.int32(style_id), np.int32(BUNDLE_ID_BASE + int(k) % BUNDLE_ID_BASE))


def evaluation_pairs(concepts, styles, count, held_out, seed=0):
    """Row indices [<= count, 2] of distinct concept pairs, each in one style, all training
    pairs or (with `held_out`) all held-out ones, for the two-object measure."""
    rng = np.random.default_rng(seed)
    concepts, seen, pairs = np.asarray(concepts), set(), []
    for _ in range(20 * count):
        try:
            rows = sample_bundle(concepts, styles, rng, 2, held_out)
        except ValueError:  # too few concepts for a pair on this side of the split
            break
        key = frozenset(concepts[rows].tolist())
        if key not in seen:
            seen.add(key)
            pairs.append(rows)
        if len(pairs) == count:
            break
    return np.array(pairs, np.int64).reshape(-1, 2)


def evaluation_prompts(pairs, names_en, names_zh, seed=0):
    """Two prompts a pair, its names joined in Chinese and in English ("热饮和水果蛋糕",
    "hot beverage with shortcake"; connectors drawn); returns (prompts [2P], pair index [2P])."""
    rng = np.random.default_rng(seed)
    prompts, owner = [], []
    for index, (a, b) in enumerate(pairs):
        for names in ((names_zh[a] or names_en[a], names_zh[b] or names_en[b]),
                      (names_en[a] or names_zh[a], names_en[b] or names_zh[b])):
            prompts.append(bundle_caption(list(names), rng))
            owner.append(index)
    return prompts, np.array(owner)
