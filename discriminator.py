"""DF-GAN discriminator: a down-sampling residual backbone and a joint image-text head.

Shapes for a 64x64 image with base_channels=32: a 3x3 convolution gives
[B, 64, 64, 32]; four down blocks (32 -> 64 -> 128 -> 256 -> 256 channels)
reach [B, 4, 4, 256]; the head tiles the sentence [B, T] to [B, 4, 4, T],
concatenates and scores the pair with one logit [B, 1]. With reconstruction
(FastGAN) the backbone also returns its 16x16 and 8x8 features, and two small
decoders must redraw the real image (at half its side) from the 8x8 features
and a random quadrant of it from an 8x8 crop of the 16x16 features: a
self-supervised task that makes D learn features that describe the whole object,
not just the few that tell real from fake on a small data set.
"""

import math

import keras
from keras import layers, ops

from generator import channel_schedule


@keras.saving.register_keras_serializable(package="adgan")
class DownBlock(layers.Layer):
    """DF-GAN discriminator block: stride-2 residual gated by a scalar that starts at 0.

    Args:
        in_channels: channels of the input features.
        out_channels: channels of the output features.
    """

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        policy = self.dtype_policy
        self.conv_down = layers.Conv2D(out_channels, 4, strides=2, padding="same", dtype=policy)
        self.conv = layers.Conv2D(out_channels, 3, padding="same", dtype=policy)
        self.shortcut = (layers.Conv2D(out_channels, 1, dtype=policy)
                         if in_channels != out_channels else None)
        self.pool = layers.AveragePooling2D(2, dtype=policy)
        # At 0 the block is the shortcut alone, which keeps early training stable.
        self.gate = self.add_weight(shape=(), initializer="zeros", name="gate")

    def build(self, input_shape):
        # from the shapes: cheaper than Keras running `call` on symbolic inputs to build
        self.conv_down.build(input_shape)
        self.conv.build(self.compute_output_shape(input_shape))
        if self.shortcut is not None:
            self.shortcut.build(input_shape)
        self.pool.build((*input_shape[:3], self.out_channels))

    def call(self, x):
        h = ops.leaky_relu(self.conv_down(x), 0.2)
        h = ops.leaky_relu(self.conv(h), 0.2)
        skip = self.pool(self.shortcut(x) if self.shortcut is not None else x)
        return skip + ops.cast(self.gate, h.dtype) * h

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else h // 2, None if w is None else w // 2, self.out_channels)

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels,
                "out_channels": self.out_channels}


@keras.saving.register_keras_serializable(package="adgan")
class DiscriminatorBackbone(keras.Model):
    """Image [B, S, S, 3] in [-1, 1] -> features [B, 4, 4, C] (C = 8 * base from 64x64 up).

    Args:
        image_size: input side in pixels (power of two >= 8).
        base_channels: channels at full resolution.
        all_scales: return [features 16x16, 8x8, 4x4] (image_size >= 32) instead of 4x4 only.
    """

    def __init__(self, image_size=64, base_channels=32, all_scales=False, **kwargs):
        channels = channel_schedule(image_size, base_channels)[::-1]  # 1x ... 8x base
        image = keras.Input((image_size, image_size, 3), name="images")
        x = layers.Conv2D(channels[0], 3, padding="same", name="from_rgb")(image)
        by_size = {}
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            x = DownBlock(c_in, c_out, name=f"down_{i}")(x)
            by_size[image_size // 2 ** (i + 1)] = x
        outputs = [by_size[16], by_size[8], x] if all_scales else x
        super().__init__(inputs=image, outputs=outputs, **kwargs)
        self.image_size = image_size
        self.base_channels = base_channels
        self.all_scales = all_scales

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "image_size": self.image_size,
                "base_channels": self.base_channels, "all_scales": self.all_scales}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="adgan")
class JointHead(keras.Model):
    """Scores (image features [B, 4, 4, C], sentence [B, T]) -> match logit [B, 1] (float32).

    Args:
        feature_channels: C, channels of the backbone's features.
        text_dim: T, length of the sentence vector.
        hidden_channels: channels of the 3x3 convolution over the joint features.
    """

    def __init__(self, feature_channels=256, text_dim=256, hidden_channels=64, **kwargs):
        features = keras.Input((4, 4, feature_channels), name="features")
        sentence = keras.Input((text_dim,), name="sentence")
        tiled = layers.Reshape((1, 1, text_dim))(sentence)
        tiled = layers.UpSampling2D(4, name="tile")(tiled)  # [B, 4, 4, T]
        x = layers.Concatenate()([features, tiled])
        x = layers.Conv2D(hidden_channels, 3, padding="same", name="joint_conv")(x)
        x = layers.LeakyReLU(negative_slope=0.2)(x)
        x = layers.Conv2D(1, 4, padding="valid", name="joint_logit")(x)
        logit = layers.Flatten(dtype="float32", name="logit")(x)
        super().__init__(inputs=[features, sentence], outputs=logit, **kwargs)
        self.feature_channels = feature_channels
        self.text_dim = text_dim
        self.hidden_channels = hidden_channels

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "feature_channels": self.feature_channels, "text_dim": self.text_dim,
                "hidden_channels": self.hidden_channels}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="adgan")
class ImageProjector(keras.Model):
    """Image features [B, 4, 4, C] -> image code [B, T] in the sentence space (float32).

    Used by the contrastive image-text loss (XMC-GAN) that teaches the text
    encoder to tell concepts apart.

    Args:
        feature_channels: C, channels of the backbone's features.
        text_dim: T, length of the sentence vector.
    """

    def __init__(self, feature_channels=256, text_dim=256, **kwargs):
        features = keras.Input((4, 4, feature_channels), name="features")
        pooled = layers.GlobalAveragePooling2D()(features)
        code = layers.Dense(text_dim, dtype="float32", name="code")(pooled)
        super().__init__(inputs=features, outputs=code, **kwargs)
        self.feature_channels = feature_channels
        self.text_dim = text_dim

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "feature_channels": self.feature_channels, "text_dim": self.text_dim}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="adgan")
class ExemplarCritic(keras.Model):
    """IC-GAN's instance-conditioned D, as a projection term: exemplar [B, s, s, 3] -> code
    [B, 4, 4, C]; `score(features, code)` = the mean over the 4x4 positions of
    features . code, added to the match logit. The code's last layer starts at zero, so a
    discriminator trained without it starts unchanged.

    Args:
        feature_channels: C, channels of the backbone's 4x4 features.
        exemplar_size: s, side of the exemplar (a power of two >= 4).
        channels: channels of the stride-2 convolutions.
    """

    def __init__(self, feature_channels=256, exemplar_size=16, channels=32, **kwargs):
        exemplar = keras.Input((exemplar_size, exemplar_size, 3), name="exemplar")
        x = exemplar
        for i in range(int(math.log2(exemplar_size // 4))):  # s -> 4
            x = layers.Conv2D(channels, 3, strides=2, padding="same", name=f"down_{i}")(x)
            x = layers.LeakyReLU(negative_slope=0.2)(x)
        code = layers.Conv2D(feature_channels, 1, kernel_initializer="zeros", name="code")(x)
        super().__init__(inputs=exemplar, outputs=code, **kwargs)
        self.feature_channels = feature_channels
        self.exemplar_size = exemplar_size
        self.channels = channels

    def score(self, features, exemplar, has, training=False):
        """Logit term [B, 1] (float32) of features [B, 4, 4, C] and the exemplar drawn from
        (`has` [B, 1]: 0 where there was none)."""
        code = self(exemplar, training=training)
        term = ops.mean(ops.sum(ops.cast(features, "float32") * ops.cast(code, "float32"),
                                axis=-1), axis=(1, 2))
        return term[:, None] * ops.cast(has, "float32")

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "feature_channels": self.feature_channels, "exemplar_size": self.exemplar_size,
                "channels": self.channels}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="adgan")
class ReconstructionDecoder(keras.Model):
    """FastGAN's small decoder: features [B, 8, 8, C] -> image [B, 8 * 2^steps, ., 3] in [-1, 1].

    Each step doubles the side: nearest up-sampling, 3x3 convolution, leaky ReLU.

    Args:
        feature_channels: C, channels of the features decoded.
        steps: number of 2x up-sampling steps.
        channels: channels of every step.
    """

    def __init__(self, feature_channels=128, steps=2, channels=32, **kwargs):
        features = keras.Input((8, 8, feature_channels), name="features")
        x = features
        for i in range(steps):
            x = layers.UpSampling2D(2, name=f"up_{i}")(x)
            x = layers.Conv2D(channels, 3, padding="same", name=f"conv_{i}")(x)
            x = layers.LeakyReLU(negative_slope=0.2)(x)
        x = layers.Conv2D(3, 3, padding="same", name="to_rgb")(x)
        image = layers.Activation("tanh", dtype="float32", name="image")(x)
        super().__init__(inputs=features, outputs=image, **kwargs)
        self.feature_channels = feature_channels
        self.steps = steps
        self.channels = channels

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "feature_channels": self.feature_channels, "steps": self.steps,
                "channels": self.channels}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="adgan")
class Discriminator(keras.Model):
    """DF-GAN discriminator: (images, sentence) -> match logit [B, 1].

    The backbone and head are exposed as `backbone` and `head` so training can
    reuse one image's features for the matched and mismatched pairs; `projector`
    maps the same features into the sentence space for the contrastive loss.

    Args:
        image_size: input side in pixels.
        text_dim: length of the sentence vector.
        base_channels: channels at full resolution (see `channel_schedule`).
        reconstruction: add the decoders `decode_whole` and `decode_part` (FastGAN's
            self-supervision; image_size >= 32); see `reconstruction_loss` in model.py.
        exemplar_size: s > 0 adds `exemplar_critic` (`ExemplarCritic`), D's instance
            conditioning; the call and the gate score without it.

    Example:
    >>> d = Discriminator(image_size=16, text_dim=8, base_channels=4)
    >>> d([ops.zeros((2, 16, 16, 3)), ops.zeros((2, 8))]).shape
    (2, 1)
    """

    def __init__(self, image_size=64, text_dim=256, base_channels=32, reconstruction=False,
                 exemplar_size=0, **kwargs):
        if reconstruction and image_size < 32:
            raise ValueError(f"reconstruction needs image_size >= 32, got {image_size}")
        backbone = DiscriminatorBackbone(image_size, base_channels, all_scales=reconstruction,
                                         name="backbone")
        channels = channel_schedule(image_size, base_channels)  # 4x4 first
        head = JointHead(channels[0], text_dim, 2 * base_channels, name="head")
        image = keras.Input((image_size, image_size, 3), name="images")
        sentence = keras.Input((text_dim,), name="sentence")
        features = backbone(image)
        logit = head([features[-1] if reconstruction else features, sentence])
        super().__init__(inputs=[image, sentence], outputs=logit, **kwargs)
        self.backbone = backbone
        self.head = head
        self.projector = ImageProjector(channels[0], text_dim, name="projector")
        if reconstruction:
            # both decode 8x8 features to half the image side: 8 -> 16 -> 32 for 64x64
            steps = int(math.log2(image_size // 16))
            self.decode_whole = ReconstructionDecoder(channels[1], steps, 2 * base_channels,
                                                      name="decode_whole")
            self.decode_part = ReconstructionDecoder(channels[2], steps, 2 * base_channels,
                                                     name="decode_part")
        if exemplar_size:
            self.exemplar_critic = ExemplarCritic(channels[0], exemplar_size,
                                                  2 * base_channels, name="exemplar_critic")
        self.image_size = image_size
        self.text_dim = text_dim
        self.base_channels = base_channels
        self.reconstruction = reconstruction
        self.exemplar_size = exemplar_size

    def image_features(self, images, training=False):
        """images -> (features [B, 4, 4, C], (16x16 features, 8x8 features) or None)."""
        features = self.backbone(images, training=training)
        if not self.reconstruction:
            return features, None
        return features[-1], (features[0], features[1])

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "image_size": self.image_size,
                "text_dim": self.text_dim, "base_channels": self.base_channels,
                "reconstruction": self.reconstruction, "exemplar_size": self.exemplar_size}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
