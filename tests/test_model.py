import keras
import numpy as np
import pytest
import tensorflow as tf

from adgan.training import distribute
import model
from model import TextToImageGAN

VOCABULARY = ["red", "dress", "shoe", "红", "色", "裙", "鞋"]
TINY = dict(image_size=16, sequence_length=6, noise_dim=8, embedding_dim=8,
            text_hidden_units=4, generator_channels=4, discriminator_channels=4,
            affine_hidden_units=8)


def batch(size=4):
    rng = np.random.default_rng(0)
    return {"text": tf.constant(["red dress", "红色裙", "shoe", "红鞋"][:size]),
            "images": tf.constant(rng.uniform(-1, 1, (size, 16, 16, 3)).astype("float32"))}


def snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def moved(before, variables):
    return any(not np.array_equal(b, v.numpy()) for b, v in zip(before, variables))


def test_ema_decay_warms_up():
    assert float(distribute.ema_decay_at(0, 0.999)) == pytest.approx(0.1)
    assert float(distribute.ema_decay_at(10**6, 0.999)) == pytest.approx(0.999)


@pytest.mark.parametrize("options", [{}, dict(image_size=64, skip_excitation=True,
                                               reconstruction_weight=1.0, word_attention=True)])
def test_a_new_model_is_built_through_and_through(options):
    # the blocks build their layers from the shapes (no symbolic run of `call`); one left
    # unbuilt makes Keras call the whole model on a batch first, which a GAN cannot take
    gan = TextToImageGAN(VOCABULARY, **{**TINY, **options})
    assert [layer.name for layer in gan._flatten_layers() if not layer.built] == []


def test_one_train_step_gives_finite_losses_and_moves_both_nets():
    gan = TextToImageGAN(VOCABULARY, **TINY)
    gan.compile()
    gan.build_optimizers()
    g_before, d_before = snapshot(gan.generator.weights), snapshot(gan.discriminator.weights)
    text_before, ema_before = snapshot(gan.text_encoder.weights), snapshot(gan.ema_generator.weights)
    logs = gan.train_step(batch())
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert moved(g_before, gan.generator.weights)
    assert moved(d_before, gan.discriminator.weights)
    assert moved(text_before, gan.text_encoder.weights)
    assert moved(ema_before, gan.ema_generator.weights)


FASTGAN = dict(TINY, image_size=32, augment_color=True, augment_cutout=0.5, skip_excitation=True,
               reconstruction_weight=1.0, mode_seeking_weight=1.0)


def fastgan_batch():
    rng = np.random.default_rng(0)
    return {"text": tf.constant(["red dress", "红色裙", "shoe", "红鞋"]),
            "images": tf.constant(rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")),
            "concept_id": tf.constant([0, 0, 1, 2], tf.int32)}


def test_fastgan_step_trains_decoders_reports_every_loss_and_reloads(tmp_path):
    """Skip-layer excitation, D's decoders, colour + cutout, mode seeking and concept
    positives in one 32x32 step; the decoders survive a save and load."""
    gan = TextToImageGAN(VOCABULARY, **FASTGAN)
    gan.compile()
    decoders = gan.discriminator.decode_whole.weights + gan.discriminator.decode_part.weights
    before = snapshot(decoders)
    # eagerly: tracing this step costs ~25 s, and every smoke run (conftest.trained_run)
    # already runs the train step traced, as `fit` does
    logs = gan.train_step(fastgan_batch())
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert float(logs["reconstruction"]) > 0 and float(logs["mode_seeking"]) > 0
    assert moved(before, decoders)
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.get_config() == gan.get_config()
    for mine, theirs in zip(decoders, reloaded.discriminator.decode_whole.weights
                            + reloaded.discriminator.decode_part.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(gan.generate(["red dress"], seed=1)),
                                  keras.ops.convert_to_numpy(reloaded.generate(["red dress"],
                                                                               seed=1)))


def test_lazy_penalty_runs_every_nth_step_and_still_trains():
    gan = TextToImageGAN(VOCABULARY, gp_every=2, **TINY)
    gan.compile()
    penalties = []
    for _ in range(3):  # eagerly, for its time: the smoke runs run it traced (lazy GP on)
        gan.trackers["gp"].reset_state()
        logs = gan.train_step(batch())
        assert all(np.isfinite(float(v)) for v in logs.values())
        penalties.append(float(logs["gp"]))
    assert penalties[0] > 0 and penalties[1] == 0 and penalties[2] > 0


def test_mixed_precision_step_keeps_float32_variables_and_finite_losses():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    gan = TextToImageGAN(VOCABULARY, **FASTGAN)
    gan.compile()
    assert gan.generator.layers[3].compute_dtype == "bfloat16"
    logs = gan.train_step(fastgan_batch())
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert {v.dtype for v in gan.trainable_variables} == {"float32"}
    assert gan.generate(["red dress"], seed=0).dtype == "float32"


def test_generate_is_seeded_and_in_range():
    gan = TextToImageGAN(VOCABULARY, **TINY)
    first = keras.ops.convert_to_numpy(gan.generate(["red dress", "红鞋"], seed=5))
    again = keras.ops.convert_to_numpy(gan.generate(["red dress", "红鞋"], seed=5))
    other = keras.ops.convert_to_numpy(gan.generate(["red dress", "红鞋"], seed=6))
    assert first.shape == (2, 16, 16, 3) and np.abs(first).max() <= 1.0
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_config_round_trip_and_keras_save_reload(tmp_path):
    gan = TextToImageGAN(VOCABULARY, **TINY)
    config = gan.get_config()
    assert TextToImageGAN.from_config(config).get_config() == config
    text_encoder_config = gan.text_encoder.get_config()
    assert model.TextEncoder.from_config(text_encoder_config).get_config() == text_encoder_config
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    reloaded = keras.saving.load_model(path)
    for texts in (["red dress", "红色裙"], ["鞋"]):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(gan.generate(texts, seed=1)),
            keras.ops.convert_to_numpy(reloaded.generate(texts, seed=1)))


def test_word_attention_gan_trains_draws_with_the_words_and_reloads(tmp_path):
    gan = TextToImageGAN(VOCABULARY, **dict(FASTGAN, word_attention=True))
    gan.compile()
    gan.build_optimizers()
    gate = gan.generator.get_layer("attend_16").gate
    logs = gan.train_step(fastgan_batch())
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert float(gate.numpy()) != 0.0  # the attention is trained
    sentence, text = gan.text_inputs(gan.vectorizer(tf.constant(["red dress", "shoe"])))
    assert len(text) == 3 and text[1].shape == (2, 6, 8)
    np.testing.assert_array_equal(text[2].numpy(), [[1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(gan.generate(["red dress", "红鞋"], seed=1)),
        keras.ops.convert_to_numpy(reloaded.generate(["red dress", "红鞋"], seed=1)))
