"""A learned 4x up-sampler for the generator's pictures (64 -> 256 px), and the sizes a
drawing can be returned at.

The GAN draws at its native size S (64 px for the shipped model), where CPU training can
afford it; an ad wants more. `Upsampler` is Real-ESRGAN's SRVGG-compact design made
small: 3x3 convolutions with PReLU at the input resolution, one convolution to 3 x 4^2
channels, a pixel shuffle to 4S, plus the nearest-neighbour-upsampled input (the network
only learns the residual). `adgan-train-upsampler` trains one; it lives in a run
folder beside the GAN (`adgan.runs.layout.LAYOUT["upsampler"]`, models/adgan/upsampler.keras).

`resize_to(images, size, upsampler)` is the one place a drawing changes size: the
native size as drawn, 4S through the up-sampler, 2S as its output area-downsampled, and
a run without an up-sampler falls back to Lanczos + unsharp mask (`lanczos_unsharp`), the
way creatives were made before. Every command and the SavedModel call it.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from PIL import Image, ImageFilter

from data_loader import to_float_tensor, to_uint8_tensor

SCALE = 4
SIZE_FACTORS = (1, 2, SCALE)  # the sizes a drawing comes at, in multiples of the native size
# The evaluator's layers the feature loss compares: its first block (at 4S and 2S). The
# second block would triple a training step's time on the 2-core CPU.
FEATURE_LAYERS = ("conv_0", "down_0")


def output_sizes(native_size):
    """The sizes a model drawing at `native_size` returns: (S, 2S, 4S), 64 -> (64, 128, 256)."""
    return tuple(native_size * factor for factor in SIZE_FACTORS)


@keras.saving.register_keras_serializable(package="adgan")
class PixelShuffle(layers.Layer):
    """[B, H, W, C * r^2] -> [B, rH, rW, C] (depth to space, as ESPCN / SRVGG)."""

    def __init__(self, scale=SCALE, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        return tf.nn.depth_to_space(x, self.scale)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="adgan")
class Upsampler(keras.Model):
    """Image [B, H, W, 3] in [-1, 1] -> [B, 4H, 4W, 3] in about [-1, 1] (any H, W).

    Args:
        channels: C, the width of every hidden convolution.
        num_convs: hidden 3x3 convolutions after the first (each C -> C, then PReLU).
        scale: r, the up-sampling factor.
    """

    def __init__(self, channels=32, num_convs=6, scale=SCALE, **kwargs):
        image = keras.Input((None, None, 3), name="images")
        x = image
        for i in range(num_convs + 1):
            x = layers.Conv2D(channels, 3, padding="same", name=f"conv_{i}")(x)
            # slopes start at 0.25, as PyTorch's PReLU (Real-ESRGAN's): from ReLU's 0, a
            # no-noise training run here lost its units in the first steps and never learned
            x = layers.PReLU(keras.initializers.Constant(0.25), shared_axes=[1, 2],
                             name=f"prelu_{i}")(x)
        # the last convolution starts at zero: an untrained up-sampler is nearest-neighbour
        x = layers.Conv2D(3 * scale ** 2, 3, padding="same", kernel_initializer="zeros",
                          name="to_pixels")(x)
        residual = PixelShuffle(scale, name="pixel_shuffle")(x)
        base = layers.UpSampling2D(scale, interpolation="nearest", name="nearest")(image)
        out = layers.Add(dtype="float32", name="upsampled")([base, residual])
        super().__init__(inputs=image, outputs=out, **kwargs)
        self.channels, self.num_convs, self.scale = channels, num_convs, scale

    def get_config(self):
        return {"channels": self.channels, "num_convs": self.num_convs, "scale": self.scale,
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def gaussian_kernel(sigma, radius):
    """A normalised 2-D Gaussian [2r+1, 2r+1, 3, 1] for a depthwise convolution."""
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    g = np.exp(-x ** 2 / (2 * sigma ** 2))
    k = np.outer(g, g) / np.outer(g, g).sum()
    return tf.constant(np.tile(k[:, :, None, None], (1, 1, 3, 1)))


def lanczos_unsharp(images, size, amount=0.6):
    """float [B, S, S, 3] in [-1, 1] -> [B, size, size, 3]: Lanczos-3, then an unsharp mask
    (in the graph; `pil_lanczos_unsharp` is the same recipe in PIL, for one picture)."""
    big = tf.image.resize(images, (size, size), method="lanczos3")
    radius = max(1, size // 200)
    padded = tf.pad(big, [[0, 0], [2 * radius] * 2, [2 * radius] * 2, [0, 0]], "SYMMETRIC")
    blurred = tf.nn.depthwise_conv2d(padded, gaussian_kernel(radius, 2 * radius),
                                     [1, 1, 1, 1], "VALID")
    return tf.clip_by_value(big + amount * (big - blurred), -1.0, 1.0)


def pil_lanczos_unsharp(image, side):
    """uint8 RGB [S, S, 3] -> PIL image side x side: Lanczos in doubling steps (smoother
    edges than one big jump), then an unsharp mask. What creatives did before the up-sampler."""
    picture = Image.fromarray(np.asarray(image, np.uint8))
    while picture.width * 2 < side:
        picture = picture.resize((picture.width * 2, picture.height * 2),
                                 Image.Resampling.LANCZOS)
    picture = picture.resize((side, side), Image.Resampling.LANCZOS)
    return picture.filter(ImageFilter.UnsharpMask(radius=max(1, side // 200), percent=60))


def resize_to(images, size, upsampler=None):
    """float images [B, S, S, 3] in [-1, 1] (the generator's) -> [B, size, size, 3] in
    [-1, 1], `size` one of `output_sizes(S)` (checked by the caller; works in a graph).

    4S is the up-sampler's output (Lanczos + unsharp without one); 2S is that picture
    area-downsampled, so every size shows the same drawing.
    """
    native = images.shape[1]
    if size == native:
        return images
    big = (upsampler(images, training=False) if upsampler is not None
           else lanczos_unsharp(images, native * SCALE))
    big = tf.clip_by_value(tf.cast(big, tf.float32), -1.0, 1.0)
    if size == native * SCALE:
        return big
    return tf.image.resize(big, (size, size), method="area")


def enlarge(images, size, upsampler=None):
    """uint8 [B, S, S, 3] -> uint8 [B, size, size, 3]: `resize_to` from the quantised picture,
    so a command and the SavedModel enlarge the same pixels alike. `size`: a Python int, or
    a scalar int64 tensor (a request's, in a graph)."""
    floats = to_float_tensor(images)
    resized = (resize_to(floats, size, upsampler) if isinstance(size, int)
               else resize_any(floats, size, upsampler))
    return to_uint8_tensor(resized)


def resize_any(images, size, upsampler=None):
    """`resize_to` with `size` a scalar int64 tensor (a request's), one graph branch per
    output size; a size outside `output_sizes` must be refused before (it would run the
    first branch)."""
    sizes = output_sizes(images.shape[1])
    index = tf.argmax(tf.cast(tf.equal(tf.constant(sizes, tf.int64), size), tf.int32))
    return tf.switch_case(tf.cast(index, tf.int32),
                          [lambda s=s: resize_to(images, s, upsampler) for s in sizes])


def low_resolution(image, native_size):
    """uint8 [4S, 4S, 3] -> uint8 [S, S, 3] made as the generator's training images are
    (build_emoji's Lanczos to 2S, then the loader's bicubic to S), so the up-sampler learns
    from pictures that look like the ones it will be given."""
    picture = Image.fromarray(np.asarray(image, np.uint8))
    picture = picture.resize((2 * native_size,) * 2, Image.Resampling.LANCZOS)
    return np.asarray(picture.resize((native_size,) * 2, Image.Resampling.BICUBIC))


def feature_extractor(dual_encoder, layer_names=FEATURE_LAYERS):
    """The evaluator's image encoder made fully convolutional (any input size): a model
    image [B, H, W, 3] in [-1, 1] -> (pooled features [B, 8C], [maps of `layer_names`]).

    The evaluator is trained on small pictures; at 256 px its first layers still see
    local edges and colours, which is what sharpness and artefacts change."""
    trained = dual_encoder.image_encoder
    config = {**trained.get_config(), "image_size": None, "name": "image_encoder_any_size"}
    encoder = type(trained).from_config(config)
    encoder.set_weights(trained.get_weights())
    encoder.trainable = False
    maps = [encoder.get_layer(name).output for name in layer_names]
    return keras.Model(encoder.input, [encoder.output[0], maps], name="feature_extractor")
