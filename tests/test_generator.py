import keras
import numpy as np
import pytest

from generator import ConditionalAffine, Generator, WordAttention, channel_schedule

TINY = dict(image_size=16, noise_dim=8, text_dim=6, base_channels=4, hidden_units=8)


def inputs(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, 8)).astype("float32"),
            rng.standard_normal((batch, 6)).astype("float32")]


def test_channel_schedule_from_image_size():
    assert channel_schedule(64, 32) == [256, 256, 128, 64, 32]
    assert channel_schedule(32, 32) == [256, 128, 64, 32]
    assert channel_schedule(128, 8) == [64, 64, 64, 32, 16, 8]
    with pytest.raises(ValueError, match="power of two"):
        channel_schedule(48, 8)


@pytest.mark.parametrize("size", [16, 32])
def test_output_shape_and_tanh_range(size):
    generator = Generator(**dict(TINY, image_size=size))
    images = keras.ops.convert_to_numpy(generator(inputs(3)))
    assert images.shape == (3, size, size, 3)
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_affine_starts_as_identity():
    features = np.random.default_rng(0).standard_normal((2, 4, 4, 5)).astype("float32")
    condition = np.ones((2, 7), "float32")
    out = ConditionalAffine(5, 8)([features, condition])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), features, rtol=1e-6)


def test_parameter_count_is_pinned():
    assert Generator(**TINY).count_params() == 7987  # counted by hand: project 2304 + up blocks 3704, 1868 + to_rgb 111


def test_config_round_trip():
    generator = Generator(**TINY)
    config = generator.get_config()
    assert Generator.from_config(config).get_config() == config


def test_keras_save_and_reload_give_equal_outputs(tmp_path):
    generator = Generator(**TINY)
    path = str(tmp_path / "g.keras")
    generator.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(generator(inputs())),
                                  keras.ops.convert_to_numpy(reloaded(inputs())))


def test_skip_excitation_gates_the_32_pixel_block_and_round_trips(tmp_path):
    generator = Generator(**dict(TINY, image_size=32, skip_excitation=True))
    names = [layer.name for layer in generator.layers]
    assert "excite_32" in names and "excite_16" not in names  # 8x8 gates 32x32 only
    plain = Generator(**dict(TINY, image_size=32))
    # squeeze: 4x4 conv from the 16 channels at 8x8 to the 4 at 32x32; excite: 1x1 conv 4 -> 4
    assert generator.count_params() - plain.count_params() == (16 * 16 * 4 + 4) + (4 * 4 + 4)
    path = str(tmp_path / "g.keras")
    generator.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.get_config()["skip_excitation"] is True
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(generator(inputs())),
                                  keras.ops.convert_to_numpy(reloaded(inputs())))


def word_inputs(batch=2, words=5, seed=1):
    """[noise, sentence, words [B, L, 6], word mask [B, L] (the last two are padding)]."""
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, words), "float32")
    mask[:, -2:] = 0.0
    arrays = inputs(batch) + [rng.standard_normal((batch, words, 6)).astype("float32"), mask]
    return [keras.ops.convert_to_tensor(a) for a in arrays]


def test_word_attention_starts_as_the_identity_and_ignores_padding():
    layer = WordAttention(4)
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2, 8, 8, 4)).astype("float32")
    words, mask = word_inputs()[2:]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer([features, words, mask])),
                                  features)  # the gate starts at zero
    layer.gate.assign(1.0)
    out = keras.ops.convert_to_numpy(layer([features, words, mask]))
    assert not np.allclose(out, features)
    changed = keras.ops.convert_to_numpy(words).copy()
    changed[:, -2:] = 100.0  # what stands in padding positions must not matter
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer([features, changed, mask])), out, atol=1e-5)
    changed[:, 0] = 100.0  # a word does
    assert not np.allclose(keras.ops.convert_to_numpy(layer([features, changed, mask])), out)


def test_word_attention_generator_takes_words_and_round_trips(tmp_path):
    generator = Generator(**dict(TINY, image_size=32, word_attention=True))
    assert [l.name for l in generator.layers
            if l.name.startswith("attend")] == ["attend_16", "attend_32"]
    plain = Generator(**dict(TINY, image_size=32))
    # each: word projection 6 -> C (no bias), 1x1 mix C -> C, and the gate; C = 8 at 16x16,
    # 4 at 32x32
    assert generator.count_params() - plain.count_params() == sum(
        6 * c + (c * c + c) + 1 for c in (8, 4))
    plain.set_weights([w for w, layer in zip(generator.get_weights(), generator.weights)
                       if "attend" not in layer.path])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(generator(word_inputs())),
                               keras.ops.convert_to_numpy(plain(word_inputs()[:2])), atol=1e-6)
    path = str(tmp_path / "g.keras")
    generator.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.get_config()["word_attention"] is True
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(generator(word_inputs())),
                                  keras.ops.convert_to_numpy(reloaded(word_inputs())))
