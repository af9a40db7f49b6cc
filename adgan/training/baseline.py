"""The baseline: the keras.io conditional-GAN recipe, with a sentence for the class label.

As in keras.io's "Conditional GAN" example, the condition is concatenated to the
noise for G and tiled as extra channels onto D's input image; both nets are plain
strided (transposed) convolutions with LeakyReLU; the loss is binary
cross-entropy on real vs fake only (no mismatched pairs, no gradient penalty, no
EMA, no augmentation); Adam 3e-4 for both. The text encoder is the same BiLSTM
as ours and is set up the same way (`train.py`: pretrained and frozen by default,
else learning with D). `train.py --recipe baseline` trains it at the same settings
and budget as ours, for `evaluate.py`'s reference row.
"""

import keras
import tensorflow as tf
from keras import layers, ops

from adgan.text.tokenizer import TextEncoder, make_text_vectorizer
from adgan.training.distribute import replica_scale
from generator import channel_schedule
from model import TextConditionedGAN


def baseline_generator(image_size, noise_dim, text_dim, base_channels):
    """[noise, sentence] -> image [B, S, S, 3] in [-1, 1] (dense to 4x4, then 2x up-convolutions)."""
    channels = channel_schedule(image_size, base_channels)
    noise = keras.Input((noise_dim,), name="noise")
    sentence = keras.Input((text_dim,), name="sentence")
    x = layers.Concatenate()([noise, sentence])
    x = layers.Dense(4 * 4 * channels[0], name="project")(x)
    x = layers.LeakyReLU(0.2)(layers.Reshape((4, 4, channels[0]))(x))
    for i, width in enumerate(channels[1:]):
        x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", name=f"up_{i}")(x)
        x = layers.LeakyReLU(0.2)(x)
    image = layers.Conv2D(3, 3, padding="same", activation="tanh", dtype="float32",
                          name="to_rgb")(x)
    return keras.Model([noise, sentence], image, name="generator")


def baseline_discriminator(image_size, text_dim, base_channels):
    """[image, sentence] -> real/fake logit [B, 1]; the sentence is tiled onto the image."""
    channels = channel_schedule(image_size, base_channels)[::-1]
    image = keras.Input((image_size, image_size, 3), name="images")
    sentence = keras.Input((text_dim,), name="sentence")
    tiled = layers.UpSampling2D(image_size)(layers.Reshape((1, 1, text_dim))(sentence))
    x = layers.Concatenate()([image, tiled])
    for i, width in enumerate(channels[1:]):
        x = layers.Conv2D(width, 3, strides=2, padding="same", name=f"down_{i}")(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.GlobalMaxPooling2D()(x)
    logit = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model([image, sentence], logit, name="discriminator")


@keras.saving.register_keras_serializable(package="adgan")
class BaselineGAN(TextConditionedGAN):
    """keras.io conditional GAN on sentence vectors; the same interface as `TextToImageGAN`.

    Args are those of `TextToImageGAN` that the recipe uses.
    """

    def __init__(self, vocabulary, image_size=64, sequence_length=16, noise_dim=100,
                 embedding_dim=128, text_hidden_units=128, generator_channels=32,
                 discriminator_channels=32, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary = list(vocabulary)
        self.image_size = image_size
        self.sequence_length = sequence_length
        self.noise_dim = noise_dim
        self.embedding_dim = embedding_dim
        self.text_hidden_units = text_hidden_units
        self.generator_channels = generator_channels
        self.discriminator_channels = discriminator_channels
        self.seed = seed
        text_dim = 2 * text_hidden_units
        self.vectorizer = make_text_vectorizer(self.vocabulary, sequence_length)
        self.text_encoder = TextEncoder(len(self.vocabulary) + 2, embedding_dim,
                                        text_hidden_units, sequence_length, name="text_encoder")
        self.generator = baseline_generator(image_size, noise_dim, text_dim, generator_channels)
        self.discriminator = baseline_discriminator(image_size, text_dim, discriminator_channels)
        self.noise_seed = keras.random.SeedGenerator(seed, name="noise_seed")
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("d_loss", "g_loss", "real_score", "fake_score")}
        self.built = True

    @property
    def ema_generator(self):
        """The recipe keeps no moving average: samples come from G itself."""
        return self.generator

    def get_config(self):
        return {"name": self.name, "vocabulary": self.vocabulary, "image_size": self.image_size,
                "sequence_length": self.sequence_length, "noise_dim": self.noise_dim,
                "embedding_dim": self.embedding_dim, "text_hidden_units": self.text_hidden_units,
                "generator_channels": self.generator_channels,
                "discriminator_channels": self.discriminator_channels, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """keras.io's optimizers: Adam 3e-4 for both."""
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(3e-4)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(3e-4)

    def train_step(self, data):
        """One D step (BCE, real vs fake) and one G step, on {"images", "token_ids"}."""
        token_ids = data["token_ids"] if "token_ids" in data else self.vectorizer(data["text"])
        images = data["images"]
        batch = ops.shape(images)[0]
        noise = keras.random.normal((batch, self.noise_dim), seed=self.noise_seed)
        bce = keras.losses.BinaryCrossentropy(from_logits=True,
                                              reduction="sum_over_batch_size")
        with tf.GradientTape() as tape:
            sentence = self.text_encoder(token_ids, training=True)[1]
            fake = self.generator([noise, ops.stop_gradient(sentence)], training=True)
            real_logits = self.discriminator([images, sentence], training=True)
            fake_logits = self.discriminator([ops.stop_gradient(fake), sentence], training=True)
            d_loss = (bce(ops.ones_like(real_logits), real_logits)
                      + bce(ops.zeros_like(fake_logits), fake_logits))
            scaled_loss = d_loss * replica_scale()  # replicas' gradients are summed
        d_vars = self.d_variables
        self.d_optimizer.apply(tape.gradient(scaled_loss, d_vars), d_vars)

        sentence = ops.stop_gradient(sentence)
        with tf.GradientTape() as tape:
            fake_logits = self.discriminator(
                [self.generator([noise, sentence], training=True), sentence], training=True)
            g_loss = bce(ops.ones_like(fake_logits), fake_logits)
            scaled_loss = g_loss * replica_scale()
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(scaled_loss, g_vars), g_vars)

        values = {"d_loss": d_loss, "g_loss": g_loss, "real_score": ops.mean(real_logits),
                  "fake_score": ops.mean(fake_logits)}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}
