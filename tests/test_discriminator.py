import keras
import numpy as np
import pytest

from discriminator import Discriminator, DownBlock

TINY = dict(image_size=16, text_dim=6, base_channels=4)


def inputs(batch=2):
    rng = np.random.default_rng(0)
    return [rng.uniform(-1, 1, (batch, 16, 16, 3)).astype("float32"),
            rng.standard_normal((batch, 6)).astype("float32")]


def test_shapes_of_logit_and_features():
    discriminator = Discriminator(**TINY)
    assert tuple(discriminator(inputs(3)).shape) == (3, 1)
    assert tuple(discriminator.backbone(inputs(3)[0]).shape) == (3, 4, 4, 16)


def test_residual_gate_starts_at_zero():
    block = DownBlock(4, 8)
    x = np.random.default_rng(0).standard_normal((1, 8, 8, 4)).astype("float32")
    out = keras.ops.convert_to_numpy(block(x))
    assert float(block.gate.numpy()) == 0.0
    expected = keras.ops.convert_to_numpy(block.pool(block.shortcut(x)))
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_parameter_count_is_pinned():
    # from_rgb 112 + down blocks 1145, 4529 + head 1592, 129 + projector 16 * 6 + 6
    assert Discriminator(**TINY).count_params() == 7609


def test_config_round_trip_and_save_reload(tmp_path):
    discriminator = Discriminator(**TINY)
    config = discriminator.get_config()
    assert Discriminator.from_config(config).get_config() == config
    path = str(tmp_path / "d.keras")
    discriminator.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(discriminator(inputs())),
                                  keras.ops.convert_to_numpy(reloaded(inputs())))


def test_reconstruction_decoders_redraw_half_the_side_from_8x8_features():
    discriminator = Discriminator(image_size=32, text_dim=6, base_channels=2, reconstruction=True)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    features, (middle, low) = discriminator.image_features(images)
    assert tuple(features.shape) == (2, 4, 4, 16)
    assert tuple(middle.shape) == (2, 16, 16, 4) and tuple(low.shape) == (2, 8, 8, 8)
    assert tuple(discriminator.decode_whole(low).shape) == (2, 16, 16, 3)
    assert tuple(discriminator.decode_part(middle[:, :8, :8]).shape) == (2, 16, 16, 3)
    plain = Discriminator(image_size=32, text_dim=6, base_channels=2)
    assert plain.image_features(images)[1] is None
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(plain.image_features(images)[0]),
                                  keras.ops.convert_to_numpy(plain.backbone(images)))
    with pytest.raises(ValueError, match="image_size >= 32"):
        Discriminator(image_size=16, text_dim=6, base_channels=2, reconstruction=True)
