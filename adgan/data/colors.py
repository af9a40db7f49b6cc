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
