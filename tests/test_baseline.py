import keras
import numpy as np
import pytest
import tensorflow as tf

from adgan.runs.artifacts import load_model
from adgan.runs.layout import run_path
from adgan.training.baseline import BaselineGAN, baseline_discriminator, baseline_generator
from conftest import TINY_ARGS
import generate
import train


def test_nets_have_the_shapes_and_ranges_of_the_recipe():
    generator = baseline_generator(image_size=16, noise_dim=4, text_dim=6, base_channels=2)
    images = generator([np.random.default_rng(0).normal(size=(3, 4)) * 10, np.ones((3, 6))])
    assert images.shape == (3, 16, 16, 3)
    assert float(tf.reduce_min(images)) >= -1.0 and float(tf.reduce_max(images)) <= 1.0
    discriminator = baseline_discriminator(image_size=16, text_dim=6, base_channels=2)
    assert discriminator([images.numpy(), np.ones((3, 6), "float32")]).shape == (3, 1)


def test_train_step_updates_both_nets_and_the_config_round_trips():
    gan = BaselineGAN(["red", "dress"], image_size=16, sequence_length=4, noise_dim=4,
                      embedding_dim=4, text_hidden_units=4, generator_channels=2,
                      discriminator_channels=2)
    gan.compile()
    before = [v.numpy().copy() for v in gan.generator.weights + gan.discriminator.weights]
    logs = gan.train_step({"text": tf.constant(["red dress", "dress"]),
                           "images": tf.zeros((2, 16, 16, 3))})
    assert all(np.isfinite(float(v)) for v in logs.values())
    g_count = len(gan.generator.weights)
    after = [v.numpy() for v in gan.generator.weights + gan.discriminator.weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before[:g_count], after[:g_count]))
    assert any(not np.array_equal(b, a) for b, a in zip(before[g_count:], after[g_count:]))
    assert gan.ema_generator is gan.generator  # the recipe keeps no moving average
    config = gan.get_config()
    assert BaselineGAN.from_config(config).get_config() == config


def test_baseline_recipe_trains_saves_and_draws(tiny_manifest, tmp_path):
    run = train.main(TINY_ARGS + ["--recipe", "baseline", "--manifest", tiny_manifest,
                                  "--out-dir", str(tmp_path / "baseline")])
    assert isinstance(load_model(run), BaselineGAN)
    assert isinstance(keras.saving.load_model(run_path(run, "model")), BaselineGAN)
    files = generate.main(["--run", run, "--out-dir", str(tmp_path / "img"), "-n", "2", "dress"])
    assert len(files) == 2
    with pytest.raises(SystemExit):
        train.main(["--recipe", "stylegan"])
