"""Colour words: recolouring products for training, and judging the colour of an image.

The shipped emoji come in one colour each, so "红色连衣裙" / "red dress" cannot be
learned from them. With `--color-augment N`, the loader adds N recoloured copies
of each suitable row (clothes, bags, shoes, cars) per epoch: the product's pixels
(by the image's alpha) take a random colour of `PALETTE` with their shading kept,
and the colour word joins the caption in the caption's language. `dominant_color`
reads an image's colour back for `evaluate.py`'s colour accuracy.
"""

import re

import numpy as np
import tensorflow as tf

from adgan.helpers import HAN_CHARACTERS, has_han

# (English, Chinese, hue in degrees (None = achromatic), saturation of the recoloured product)
PALETTE = (
    ("red", "红色", 0.0, 0.85),
    ("orange", "橙色", 30.0, 0.9),
    ("yellow", "黄色", 55.0, 0.9),
    ("green", "绿色", 125.0, 0.8),
    ("blue", "蓝色", 220.0, 0.85),
    ("purple", "紫色", 280.0, 0.7),
    ("pink", "粉色", 330.0, 0.45),
    ("black", "黑色", None, 0.1),
)
COLOR_NAMES = tuple(english for english, *_ in PALETTE)
BLACK = COLOR_NAMES.index("black")
# The shipped manifest's subgroups whose products make sense in any colour.
DEFAULT_SUBGROUPS = ("clothing", "transport-ground")
# A pixel darker than this reads as black; one this grey (saturation) reads as no colour.
BLACK_VALUE = 0.35
GREY_SATURATION = 0.25


# (English words, Chinese words, hue in degrees (None = achromatic), saturation, the darkest
# and the lightest value of the recoloured product: its shading is squeezed into that range).
# The palette's eight come first, in its order, with its words; the rest are colours shops
# name that the palette lacks. A word may be several ("navy blue"); the first of each
# language is the one shown.
SHOP_COLORS = (
    (("red",), ("红色", "大红", "正红"), 0.0, 0.85, 0.45, 1.0),
    (("orange",), ("橙色", "橘色", "橘黄色"), 30.0, 0.9, 0.45, 1.0),
    (("yellow",), ("黄色", "明黄"), 55.0, 0.9, 0.45, 1.0),
    (("green",), ("绿色",), 125.0, 0.8, 0.45, 1.0),
    (("blue",), ("蓝色", "宝蓝"), 220.0, 0.85, 0.45, 1.0),
    (("purple", "violet"), ("紫色",), 280.0, 0.7, 0.45, 1.0),
    (("pink",), ("粉色", "粉红", "粉红色"), 330.0, 0.45, 0.45, 1.0),
    (("black",), ("黑色",), None, 0.1, 0.05, 0.3),
    (("white", "off-white", "off white"), ("白色", "纯白", "米白", "奶白", "乳白"),
     None, 0.03, 0.6, 0.93),
    (("grey", "gray"), ("灰色", "深灰", "浅灰", "烟灰"), None, 0.0, 0.35, 0.75),
    (("brown", "chocolate brown"), ("棕色", "咖啡色", "褐色", "驼色"), 25.0, 0.6, 0.25, 0.7),
    (("beige", "cream", "nude"), ("米色", "杏色", "奶油色"), 35.0, 0.25, 0.7, 1.0),
    (("gold", "golden"), ("金色",), 45.0, 0.75, 0.5, 1.0),
    (("silver",), ("银色",), None, 0.03, 0.55, 0.95),
    (("navy", "navy blue", "dark blue"), ("藏青", "藏青色", "深蓝", "深蓝色", "藏蓝"),
     225.0, 0.8, 0.2, 0.6),
    (("khaki",), ("卡其", "卡其色"), 50.0, 0.35, 0.55, 0.9),
    (("burgundy", "wine red", "maroon"), ("酒红", "酒红色", "枣红"), 345.0, 0.8, 0.3, 0.7),
    (("sky blue", "light blue", "baby blue"), ("天蓝", "天蓝色", "浅蓝", "浅蓝色"),
     200.0, 0.45, 0.7, 1.0),
    (("rose", "rose red", "magenta", "fuchsia"), ("玫红", "玫红色", "玫瑰红"), 330.0, 0.8, 0.45, 1.0),
    (("army green", "olive", "olive green"), ("军绿", "军绿色", "墨绿", "墨绿色"), 80.0, 0.45, 0.3, 0.7),
    (("teal", "turquoise", "cyan"), ("青绿色", "湖蓝", "湖蓝色"), 180.0, 0.6, 0.4, 0.9),
)
# One Han character that names a colour ("黑羽绒服", "白T恤"): read as the colour only right
# before a product ("网红" is no red), and then as the colour of that index in SHOP_COLORS.
SINGLE_CHARACTER_COLORS = {"红": 0, "橙": 1, "黄": 2, "绿": 3, "蓝": 4, "紫": 5, "粉": 6,
                           "黑": 7, "白": 8, "灰": 9, "棕": 10, "金": 12, "银": 13}


def shop_color_name(index):
    """The English word shown for `SHOP_COLORS[index]`."""
    return SHOP_COLORS[index][0][0]


def recolor_drawings(images, color):
    """uint8 drawings [N, S, S, 3] on white -> the same with each product in `SHOP_COLORS`
    colour `color` [N] (int; -1 leaves a drawing as it is).

    As `recolor` does for training, but with no alpha: a drawing's product is what is not
    near white, in proportion to its ink (so its anti-aliased edge stays smooth). Hue and saturation are replaced and the
    brightness squeezed into the colour's range, so the shading, and with it the shape,
    is kept; outlines (value < 0.2) stay dark on light colours.
    """
    rgb = tf.cast(images, tf.float32) / 255.0
    value = tf.reduce_max(rgb, axis=-1)
    # how much of a pixel is product: none on the white ground, all of it where the ink is
    # deep, and in between on the drawing's soft edge and its highlights, which stay soft
    product = tf.clip_by_value((0.96 - tf.reduce_min(rgb, axis=-1)) / 0.3, 0.0, 1.0)[..., None]
    index = tf.maximum(tf.cast(color, tf.int32), 0)
    table = lambda column: tf.gather(tf.constant(  # noqa: E731
        [row[column] or 0.0 for row in SHOP_COLORS], tf.float32), index)[:, None, None]
    low, high = table(4), table(5)
    new_value = low + (high - low) * value
    new_value = tf.where((value < 0.2) & (low > 0.3), value, new_value)
    hsv = tf.stack([tf.broadcast_to(table(2) / 360.0, tf.shape(value)),
                    tf.broadcast_to(table(3), tf.shape(value)), new_value], -1)
    out = product * tf.image.hsv_to_rgb(hsv) + (1.0 - product) * rgb
    recolored = tf.cast(tf.round(tf.clip_by_value(out, 0.0, 1.0) * 255.0), tf.uint8)
    keep = tf.reshape(tf.cast(color, tf.int32) < 0, [-1, 1, 1, 1])
    return tf.where(keep, tf.cast(images, tf.uint8), recolored)


def color_words():
    """Every colour word in both languages (for vocabularies)."""
    return [word for english, chinese, *_ in PALETTE for word in (english, chinese)]


def mentions_color(text):
    """True if a caption already names a colour of the palette (such rows are not recoloured)."""
    lowered = text.lower()
    return any(re.search(rf"\b{english}\b", lowered) or chinese in text
               for english, chinese, *_ in PALETTE)


def color_prompt(text, color):
    """"dress", 0 -> "red dress"; "连衣裙", 0 -> "红色连衣裙" (Python strings)."""
    english, chinese, *_ = PALETTE[color]
    return chinese + text if has_han(text) else f"{english} {text}"


def add_color_word(text, color):
    """`color_prompt` in TensorFlow: a scalar string and a scalar int index."""
    english = tf.gather(tf.constant([p[0] for p in PALETTE]), color)
    chinese = tf.gather(tf.constant([p[1] for p in PALETTE]), color)
    is_chinese = tf.strings.regex_full_match(text, f"(?s).*[{HAN_CHARACTERS}].*")
    return tf.where(is_chinese, chinese + text, english + " " + text)


def recolor(rgba, color):
    """Give the product of a uint8 RGBA image [S, S, 4] the palette colour `color`.

    The RGB channels are the image already composited on white; alpha marks the
    product. Hue and saturation are replaced, brightness kept (squeezed into the
    colour's range, so a white coat turns red and a black hat blue); outlines
    (value < 0.2) stay dark. Returns uint8 RGB [S, S, 3] composited on white.
    """
    rgb = tf.cast(rgba[..., :3], tf.float32) / 255.0
    alpha = tf.cast(rgba[..., 3:], tf.float32) / 255.0
    value = tf.image.rgb_to_hsv(rgb)[..., 2]
    hues = tf.constant([(h or 0.0) / 360.0 for _, _, h, _ in PALETTE])
    saturations = tf.constant([s for *_, s in PALETTE])
    black = tf.equal(color, BLACK)
    new_value = tf.where(black, 0.05 + 0.25 * value,
                         tf.where(value < 0.2, value, 0.45 + 0.55 * value))
    hsv = tf.stack([tf.fill(tf.shape(value), tf.gather(hues, color)),
                    tf.fill(tf.shape(value), tf.gather(saturations, color)), new_value], -1)
    out = alpha * tf.image.hsv_to_rgb(hsv) + (1.0 - alpha)
    return tf.cast(tf.round(out * 255.0), tf.uint8)


def classify_pixels(images):
    """Palette index per pixel of uint8 RGB images [..., 3]; -1 for background or grey.

    Background is near-white (every channel above 0.85); dark pixels are black;
    coloured ones take the nearest palette hue (on the circle).
    """
    rgb = np.asarray(images, np.float32) / 255.0
    hsv = tf.image.rgb_to_hsv(rgb).numpy()
    hue, saturation, value = hsv[..., 0] * 360.0, hsv[..., 1], hsv[..., 2]
    chromatic = [i for i, (*_, h, _) in enumerate(PALETTE) if h is not None]
    centres = np.array([PALETTE[i][2] for i in chromatic])
    gap = np.abs(hue[..., None] - centres)
    nearest = np.array(chromatic)[np.minimum(gap, 360.0 - gap).argmin(-1)]
    labels = np.where(saturation >= GREY_SATURATION, nearest, -1)
    labels = np.where(value < BLACK_VALUE, BLACK, labels)
    background = rgb.min(-1) > 0.85
    return np.where(background, -1, labels)


def dominant_color(images):
    """Most frequent palette index among the product's pixels, per image [N] (-1: none).

    images: uint8 [N, S, S, 3].
    """
    labels = classify_pixels(images).reshape(len(images), -1)
    counts = np.stack([(labels == i).sum(1) for i in range(len(PALETTE))], 1)
    return np.where(counts.max(1) > 0, counts.argmax(1), -1)
