import keras
import numpy as np

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
