"""Image helpers shared by training samples and `generate.py`."""

import os

import numpy as np
from PIL import Image


def to_uint8(images):
    """float images in [-1, 1] [..., H, W, 3] -> uint8 [0, 255] (numpy)."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


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


def save_png(image, path):
    """Save a uint8 [H, W, 3] array or a PIL image as PNG atomically (temporary file, then
    rename)."""
    tmp = f"{path}.tmp.png"
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(tmp)
    os.replace(tmp, path)
