import keras
import numpy as np
import tensorflow as tf

from adgan.training import augment


def test_color_and_cutout_augmentations_change_images_and_pass_gradients():
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 3)).astype("float32"))
    seed = keras.random.SeedGenerator(0)
    with tf.GradientTape() as tape:
        tape.watch(images)
        colored = augment.random_color(images, seed)
        cut = augment.random_cutout(colored, 0.5, seed)
        total = tf.reduce_sum(cut)
    assert tape.gradient(total, images) is not None
    assert not np.allclose(colored.numpy(), images.numpy())
    # each image has one 4x4 square of zeros (mid-grey)
    zeros = (cut.numpy() == 0).all(axis=3).sum(axis=(1, 2))
    assert (zeros >= 16).all()
    assert augment.random_cutout(images, 0.0, seed) is images


def test_random_translate_shifts_fills_white_and_passes_gradients():
    images = tf.constant(np.full((8, 6, 6, 3), -1.0, "float32"))
    seed = keras.random.SeedGenerator(0)
    with tf.GradientTape() as tape:
        tape.watch(images)
        moved = augment.random_translate(images, 2, seed)
        total = tf.reduce_sum(moved)
    moved = moved.numpy()
    assert moved.shape == images.shape and set(np.unique(moved)) <= {-1.0, 1.0}
    assert (moved == 1.0).any() and (moved == -1.0).sum() >= 8 * 4 * 4 * 3
    assert tape.gradient(total, images) is not None
    assert augment.random_translate(images, 0, seed) is images
