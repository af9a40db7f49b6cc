"""Small helpers every room uses: atomic file writes, image conversions, the Han test.

Kept free of TensorFlow so that light tools (the CTR report, the data build) stay
light; the graph forms of the image conversions are `data_loader.to_float_tensor`
and `data_loader.to_uint8_tensor`.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shutil

import numpy as np
from PIL import Image

# Han (Chinese) characters: the CJK unified ideographs, extension A, the compatibility
# ideographs and the supplementary planes' extensions. One class for Python's `re` and
# TensorFlow's RE2 alike (both read these ranges).
HAN_CHARACTERS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
HAN = re.compile(f"[{HAN_CHARACTERS}]")


def has_han(text):
    """True if `text` holds a Han (Chinese) character."""
    return HAN.search(text) is not None


# ----------------------------------------------------------------------------- atomic writes

@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; when the block ends cleanly, rename it to `path`.

    The temporary name keeps `path`'s extension (savers that pick a format by it,
    such as Keras, NumPy and Pillow, still work), so a crash never leaves a
    half-written `path`; a failed block removes the temporary file (or folder).
    """
    folder, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    tmp = os.path.join(folder, f".{stem}.{os.getpid()}.tmp{extension}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        elif os.path.exists(tmp):
            os.remove(tmp)


def write_text(text, path):
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(data, path):
    """Write JSON (UTF-8, indented, Chinese kept readable) atomically."""
    write_text(json.dumps(data, ensure_ascii=False, indent=2), path)


def save_png(image, path):
    """Save a uint8 [H, W, 3] array or a PIL image as a PNG file atomically."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


# ----------------------------------------------------------------------------- images

def to_uint8(images):
    """float images in [-1, 1] [..., H, W, 3] -> uint8 in [0, 255] (round half to even)."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_float(images):
    """uint8 images in [0, 255] -> float32 in [-1, 1], the models' range."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def make_grid(images, rows, padding=2):
    """Tile uint8 images [rows * cols, H, W, 3] into one uint8 picture, row by row."""
    count, height, width, _ = images.shape
    cols = -(-count // rows)
    grid = np.full((rows * (height + padding) + padding, cols * (width + padding) + padding, 3),
                   255, dtype=np.uint8)
    for i, image in enumerate(images):
        top = padding + (i // cols) * (height + padding)
        left = padding + (i % cols) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


# ----------------------------------------------------------------------------- flags

def split_list(text):
    """"a,b," -> ("a", "b"): a comma-separated flag value as a tuple."""
    return tuple(value for value in text.split(",") if value)


def add_dataclass_flags(parser, config_class, **options):
    """One flag per field of a config dataclass, `--field-name`, typed by the field's default
    (booleans take `--x` / `--no-x`, tuples a comma-separated list)."""
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        kind = type(field.default)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        elif kind is tuple:
            parser.add_argument(flag, type=split_list, help="comma-separated list", **options)
        else:
            parser.add_argument(flag, type=kind, help=f"default {field.default!r}", **options)
    return parser
