"""DF-GAN generator: noise + sentence -> image, with text-conditioned affine modulation.

Shapes below are for a 64x64 image with base_channels=32: the noise and
sentence go through a dense layer to [B, 4, 4, 256], then four up-sampling
blocks (256 -> 256 -> 128 -> 64 -> 32 channels) reach [B, 64, 64, 32], and a
3x3 convolution with tanh draws the RGB image in [-1, 1]. With skip-layer
excitation (FastGAN) the 8x8 features gate the channels of the 32x32 block's
output and the 16x16 features those of the 64x64 block's: the coarse layout
reaches the fine layers by a short path. (FastGAN gates from 1/16 of the side,
4x4 at 64x64; here the 4x4 features are the projected noise alone, which had the
noise and not the text decide each sample's shape: 32x32 runs drew the same
silhouettes for every prompt, in the prompt's colours.) With word attention (AttnGAN)
the features at each side >= 16 also look up, position by position, the words of the
prompt (`WordAttention`), so "coffee and cake" can draw coffee in one place and cake in
another instead of one shape of the averaged sentence.
"""

import math

import keras
from keras import layers, ops


def channel_schedule(image_size, base_channels, min_channels=0):
    """Channels at each resolution from 4x4 up to `image_size` (a power of two >= 8), at
    least `min_channels` each.

    64 -> [8, 8, 4, 2, 1] * base; 32 -> [8, 4, 2, 1] * base; 128 -> [8, 8, 8, 4, 2, 1] * base;
    64 with base 16 and min 32 -> [128, 128, 64, 32, 32].
    """
    steps = math.log2(image_size / 4)
    if image_size < 8 or steps != int(steps):
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    steps = int(steps)
    return [max(min_channels, base_channels * min(8, 2 ** (steps - i)))
            for i in range(steps + 1)]


@keras.saving.register_keras_serializable(package="adgan")
class ConditionalAffine(layers.Layer):
    """Scale and shift features by an MLP of the condition, starting as the identity.

    Args:
        channels: feature channels C being modulated.
        hidden_units: width of the condition MLP.

    Call: `([features [B, H, W, C], condition [B, D]])` -> [B, H, W, C].
    """

    def __init__(self, channels, hidden_units=256, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.hidden_units = hidden_units
        self.scale_hidden = layers.Dense(hidden_units, activation="relu", dtype=self.dtype_policy)
        self.shift_hidden = layers.Dense(hidden_units, activation="relu", dtype=self.dtype_policy)
        # Zero kernels with bias 1 (scale) and 0 (shift): the layer starts as the identity.
        self.scale_out = layers.Dense(channels, kernel_initializer="zeros",
                                      bias_initializer="ones", dtype=self.dtype_policy)
        self.shift_out = layers.Dense(channels, kernel_initializer="zeros",
                                      bias_initializer="zeros", dtype=self.dtype_policy)

    def build(self, input_shape):
        # sub-layers built from the shapes, not by running `call` on symbolic inputs (what
        # Keras does for a layer without `build`, and the bulk of a model's construction)
        _, condition_shape = input_shape
        for hidden, out in ((self.scale_hidden, self.scale_out),
                            (self.shift_hidden, self.shift_out)):
            hidden.build(condition_shape)
            out.build((*condition_shape[:-1], self.hidden_units))

    def call(self, inputs):
        features, condition = inputs
        scale = self.scale_out(self.scale_hidden(condition))[:, None, None, :]
        shift = self.shift_out(self.shift_hidden(condition))[:, None, None, :]
        return features * scale + shift

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "hidden_units": self.hidden_units}


@keras.saving.register_keras_serializable(package="adgan")
class UpBlock(layers.Layer):
    """DF-GAN generator block: 2x nearest up-sampling, then a modulated residual.

    residual = conv(act(affine(act(affine(x))))) twice; out = shortcut(x) + residual.

    Args:
        in_channels: channels of the input features.
        out_channels: channels of the output features.
        hidden_units: width of the affine layers' condition MLP.
        project_shortcut: a 1x1 convolution on the shortcut even where the channels agree
            (a block widened to equal channels keeps the shortcut it was trained with).
    """

    def __init__(self, in_channels, out_channels, hidden_units=256, project_shortcut=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_units = hidden_units
        self.project_shortcut = project_shortcut
        policy = self.dtype_policy
        self.upsample = layers.UpSampling2D(2, interpolation="nearest", dtype=policy)
        self.affines = [ConditionalAffine(c, hidden_units, dtype=policy)
                        for c in (in_channels, in_channels, out_channels, out_channels)]
        self.conv1 = layers.Conv2D(out_channels, 3, padding="same", dtype=policy)
        self.conv2 = layers.Conv2D(out_channels, 3, padding="same", dtype=policy)
        self.shortcut = (layers.Conv2D(out_channels, 1, dtype=policy)
                         if in_channels != out_channels or project_shortcut else None)

    def build(self, input_shape):
        x_shape, condition_shape = input_shape
        b, h, w, _ = x_shape
        up = (b, None if h is None else 2 * h, None if w is None else 2 * w, self.in_channels)
        out = (*up[:3], self.out_channels)
        self.upsample.build(x_shape)
        for affine, features in zip(self.affines, (up, up, out, out)):
            affine.build([features, condition_shape])
        self.conv1.build(up)
        self.conv2.build(out)
        if self.shortcut is not None:
            self.shortcut.build(up)

    def _fuse(self, x, condition, first, second):
        x = ops.leaky_relu(first([x, condition]), 0.2)
        return ops.leaky_relu(second([x, condition]), 0.2)

    def call(self, inputs):
        x, condition = inputs
        x = self.upsample(x)
        h = self.conv1(self._fuse(x, condition, *self.affines[:2]))
        h = self.conv2(self._fuse(h, condition, *self.affines[2:]))
        return (self.shortcut(x) if self.shortcut is not None else x) + h

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape[0]
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, self.out_channels)

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels,
                "out_channels": self.out_channels, "hidden_units": self.hidden_units,
                "project_shortcut": self.project_shortcut}


@keras.saving.register_keras_serializable(package="adgan")
class SkipExcitation(layers.Layer):
    """FastGAN's skip-layer excitation: low-resolution features gate high-resolution channels.

    gate = sigmoid(conv1x1(leaky_relu(conv4x4_valid(avg_pool_to_4x4(low))))) [B, 1, 1, C];
    out = high * gate.

    Args:
        low_size: side of the low-resolution features (a multiple of 4).
        channels: C, channels of the high-resolution features being gated.

    Call: `([low [B, h, h, c], high [B, H, H, C]])` -> [B, H, H, C].
    """

    def __init__(self, low_size, channels, **kwargs):
        super().__init__(**kwargs)
        self.low_size = low_size
        self.channels = channels
        policy = self.dtype_policy
        self.pool = layers.AveragePooling2D(low_size // 4, dtype=policy)
        self.squeeze = layers.Conv2D(channels, 4, padding="valid", dtype=policy)
        self.excite = layers.Conv2D(channels, 1, activation="sigmoid", dtype=policy)

    def build(self, input_shape):
        low_shape, _ = input_shape
        self.pool.build(low_shape)
        self.squeeze.build((low_shape[0], 4, 4, low_shape[-1]))  # pooled to 4x4
        self.excite.build((low_shape[0], 1, 1, self.channels))

    def call(self, inputs):
        low, high = inputs
        return high * self.excite(ops.leaky_relu(self.squeeze(self.pool(low)), 0.1))

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {**super().get_config(), "low_size": self.low_size, "channels": self.channels}


@keras.saving.register_keras_serializable(package="adgan")
class WordAttention(layers.Layer):
    """AttnGAN's word attention, added back through a gate that starts at zero (SAGAN), so a
    generator trained without it starts unchanged.

    keys = words W [B, L, C]; attention = softmax over the prompt's words (padding masked)
    of features . keys / sqrt(C) [B, H*W, L]; context = attention . keys [B, H, W, C];
    out = features + gate * conv1x1(context).

    Args:
        channels: C, channels of the features.

    Call: `([features [B, H, W, C], words [B, L, D], word_mask [B, L] (1 = a word)])` ->
    [B, H, W, C].
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        policy = self.dtype_policy
        self.project = layers.Dense(channels, use_bias=False, dtype=policy)
        self.mix = layers.Conv2D(channels, 1, dtype=policy)
        self.gate = self.add_weight(shape=(), initializer="zeros", name="gate")

    def build(self, input_shape):
        features_shape, words_shape, _ = input_shape
        self.project.build(words_shape)
        self.mix.build(features_shape)

    def call(self, inputs):
        features, words, word_mask = inputs
        shape = ops.shape(features)
        keys = self.project(words)                                               # [B, L, C]
        queries = ops.reshape(features, (shape[0], -1, self.channels))          # [B, N, C]
        scores = ops.matmul(queries, ops.transpose(keys, (0, 2, 1))) / math.sqrt(self.channels)
        # -3e4 rather than -inf: representable in float16, and a prompt always has a word
        scores = ops.where(word_mask[:, None, :] > 0, scores, ops.cast(-3e4, scores.dtype))
        context = ops.matmul(ops.softmax(scores, axis=-1), keys)                 # [B, N, C]
        context = ops.reshape(context, shape)
        return features + ops.cast(self.gate, features.dtype) * self.mix(context)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def pick_exemplar(candidates, mask, noise):
    """Instance conditioning (`exemplars.py`): one candidate drawing per row, chosen by the
    noise (uniformly over the masked-in slots, as the argmax of i.i.d. normal draws is), so
    training's D sees the very one G drew from: (exemplar [B, s, s, 3], has one [B, 1])."""
    slots = ops.shape(mask)[1]
    scores = ops.cast(noise[:, :slots], "float32") + (ops.cast(mask, "float32") - 1.0) * 1e4
    choice = ops.one_hot(ops.argmax(scores, axis=-1), slots, dtype=candidates.dtype)  # [B, M]
    exemplar = ops.sum(candidates * choice[:, :, None, None, None], axis=1)
    return exemplar, ops.max(mask, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="adgan")
class PickExemplar(layers.Layer):
    """`pick_exemplar` as a layer: ([candidates [B, M, s, s, 3], mask [B, M],
    noise [B, Z]]) -> [exemplar [B, s, s, 3], has one [B, 1]]."""

    def call(self, inputs):
        return list(pick_exemplar(*inputs))

    def compute_output_shape(self, input_shape):
        candidates, mask, _ = input_shape
        return [(candidates[0], *candidates[2:]), (mask[0], 1)]


@keras.saving.register_keras_serializable(package="adgan")
class ExemplarInjection(layers.Layer):
    """Adds a real drawing's layout to the features (IC-GAN's instance conditioning) through
    a 1x1 convolution that starts at zero (ControlNet's zero convolution), so a generator
    trained without it starts unchanged. (A scalar gate at zero, as `WordAttention` has,
    grew at Adam's step size, ~1e-4 a step: 0.05 after 600 steps, the drawing unchanged.)

    out = features + has * conv1x1_zero(leaky_relu(conv3x3(exemplar resized to H x W)))

    Args:
        channels: C, channels of the features.

    Call: `([features [B, H, W, C], exemplar [B, s, s, 3], has [B, 1]])` -> [B, H, W, C].
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        policy = self.dtype_policy
        self.read = layers.Conv2D(channels, 3, padding="same", dtype=policy)
        self.mix = layers.Conv2D(channels, 1, kernel_initializer="zeros", dtype=policy)

    def build(self, input_shape):
        features_shape, exemplar_shape, _ = input_shape
        self.read.build((*features_shape[:3], exemplar_shape[-1]))
        self.mix.build(features_shape)

    def call(self, inputs):
        features, exemplar, has = inputs
        side = ops.shape(features)[1]
        # area resize (average of whole cells) of the s x s exemplar to the features' side
        resized = ops.image.resize(ops.cast(exemplar, features.dtype), (side, side),
                                   interpolation="area")
        code = self.mix(ops.leaky_relu(self.read(resized), 0.2))
        return features + ops.cast(has, features.dtype)[:, :, None, None] * code

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="adgan")
class Generator(keras.Model):
    """DF-GAN one-stage generator.

    Args:
        image_size: output side in pixels (power of two >= 8).
        noise_dim: length of the noise vector.
        text_dim: length of the sentence vector.
        base_channels: channels at full resolution (see `channel_schedule`).
        hidden_units: width of the affine layers' condition MLP.
        skip_excitation: gate the features at each side >= 32 by those at 1/4 of it,
            which the text has already modulated (`SkipExcitation`); False = the plain
            DF-GAN generator.
        word_attention: AttnGAN's word attention at each side >= 16 (`WordAttention`: from
            16x16 on, where the layout of several products is drawn); the
            generator then takes [noise, sentence, words [B, L, text_dim], word_mask [B, L]].
        min_channels: the fewest channels of any block (0 = the schedule's own): capacity
            where the picture is drawn, e.g. 32 for [.., 32, 32] instead of [.., 32, 16].
        exemplar_slots: M > 0 adds instance conditioning (`exemplars.py`): the inputs end
            with candidate drawings [B, M, s, s, 3] and their mask [B, M]; one is picked by
            the noise and added to the features at each side 8..s (`ExemplarInjection`).
        exemplar_size: s, the candidates' side.

    Example:
    >>> g = Generator(image_size=16, noise_dim=8, text_dim=8, base_channels=4)
    >>> g([ops.ones((2, 8)), ops.ones((2, 8))]).shape
    (2, 16, 16, 3)
    """

    def __init__(self, image_size=64, noise_dim=100, text_dim=256, base_channels=32,
                 hidden_units=256, skip_excitation=False, word_attention=False, min_channels=0,
                 exemplar_slots=0, exemplar_size=16, **kwargs):
        channels = channel_schedule(image_size, base_channels, min_channels)
        narrow = channel_schedule(image_size, base_channels)  # where the shortcuts project
        noise = keras.Input((noise_dim,), name="noise")
        sentence = keras.Input((text_dim,), name="sentence")
        inputs = [noise, sentence]
        if word_attention:
            words = keras.Input((None, text_dim), name="words")
            word_mask = keras.Input((None,), name="word_mask")
            inputs += [words, word_mask]
        if exemplar_slots:
            candidates = keras.Input((exemplar_slots, exemplar_size, exemplar_size, 3),
                                     name="exemplars")
            candidate_mask = keras.Input((exemplar_slots,), name="exemplar_mask")
            inputs += [candidates, candidate_mask]
            exemplar, has_exemplar = PickExemplar(name="pick_exemplar")(
                [candidates, candidate_mask, noise])
        condition = layers.Concatenate(name="condition")([noise, sentence])
        x = layers.Dense(4 * 4 * channels[0], name="project")(noise)
        x = layers.Reshape((4, 4, channels[0]))(x)
        by_size = {4: x}  # features at each side, for the skip-layer excitation
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            x = UpBlock(c_in, c_out, hidden_units, narrow[i] != narrow[i + 1],
                        name=f"up_{i}")([x, condition])
            size = 2 ** (i + 3)
            if word_attention and size >= 16:
                x = WordAttention(c_out, name=f"attend_{size}")([x, words, word_mask])
            if exemplar_slots and size <= exemplar_size:
                x = ExemplarInjection(c_out, name=f"exemplar_{size}")(
                    [x, exemplar, has_exemplar])
            if skip_excitation and size >= 32:
                x = SkipExcitation(size // 4, c_out, name=f"excite_{size}")([by_size[size // 4], x])
            by_size[size] = x
        x = layers.LeakyReLU(negative_slope=0.2)(x)
        x = layers.Conv2D(3, 3, padding="same", name="to_rgb")(x)
        # The image leaves in float32 whatever the compute policy.
        image = layers.Activation("tanh", dtype="float32", name="image")(x)
        super().__init__(inputs=inputs, outputs=image, **kwargs)
        self.image_size = image_size
        self.noise_dim = noise_dim
        self.text_dim = text_dim
        self.base_channels = base_channels
        self.hidden_units = hidden_units
        self.skip_excitation = skip_excitation
        self.word_attention = word_attention
        self.min_channels = min_channels
        self.exemplar_slots = exemplar_slots
        self.exemplar_size = exemplar_size

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "image_size": self.image_size,
                "noise_dim": self.noise_dim, "text_dim": self.text_dim,
                "base_channels": self.base_channels, "hidden_units": self.hidden_units,
                "skip_excitation": self.skip_excitation, "word_attention": self.word_attention,
                "min_channels": self.min_channels, "exemplar_slots": self.exemplar_slots,
                "exemplar_size": self.exemplar_size}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
