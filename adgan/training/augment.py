"""DiffAugment (Zhao et al. 2020): differentiable translation, colour and cutout of the
images a discriminator sees, real and fake alike, so a small data set is not memorised."""

import keras
import tensorflow as tf
from keras import ops


def random_translate(images, max_shift, seed):
    """DiffAugment-style translation: shift each image by up to `max_shift` pixels.

    Uncovered pixels become white (+1), the background of product shots. Being a
    gather, it is differentiable, so it can augment fakes before D as well.
    """
    if max_shift <= 0:
        return images
    batch, height, width = ops.shape(images)[0], ops.shape(images)[1], ops.shape(images)[2]
    shifts = keras.random.randint((batch, 2), -max_shift, max_shift + 1, seed=seed)
    rows = ops.arange(height)[None, :] - shifts[:, :1]  # [B, H] source row of each output row
    cols = ops.arange(width)[None, :] - shifts[:, 1:]   # [B, W]
    moved = tf.gather(images, ops.clip(rows, 0, height - 1), axis=1, batch_dims=1)
    moved = tf.gather(moved, ops.clip(cols, 0, width - 1), axis=2, batch_dims=1)
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    return ops.where(inside[..., None], moved, ops.ones_like(moved))


def random_color(images, seed):
    """DiffAugment colour: random brightness (+-0.5), saturation (x0..2) and contrast
    (x0.5..1.5) per image, on images in [-1, 1] (as the DiffAugment paper does)."""
    batch = ops.shape(images)[0]
    draws = keras.random.uniform((batch, 3, 1, 1, 1), seed=seed, dtype=images.dtype)
    images = images + (draws[:, 0] - 0.5)
    gray = ops.mean(images, axis=3, keepdims=True)
    images = (images - gray) * (2.0 * draws[:, 1]) + gray
    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) * (draws[:, 2] + 0.5) + mean


def random_cutout(images, fraction, seed):
    """DiffAugment cutout: set a square of `fraction` of the side, at a random place per image,
    to 0 (mid-grey)."""
    if fraction <= 0:
        return images
    batch, height, width = ops.shape(images)[0], ops.shape(images)[1], ops.shape(images)[2]
    size = max(1, int(round(fraction * images.shape[1])))
    corners = keras.random.randint((batch, 2), 0, images.shape[1] - size + 1, seed=seed)
    rows = ops.arange(height)[None, :] - corners[:, :1]  # [B, H]: row inside the square?
    cols = ops.arange(width)[None, :] - corners[:, 1:]
    inside = (((rows >= 0) & (rows < size))[:, :, None]
              & ((cols >= 0) & (cols < size))[:, None, :])
    return ops.where(inside[..., None], ops.zeros_like(images), images)
