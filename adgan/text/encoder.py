"""A DAMSM-style dual text-image encoder: the evaluator, and a pretrained text encoder.

The text side is the GAN's own architecture (tokenizer + bidirectional LSTM), the
image side a small CNN; both map into one space and are trained contrastively
(symmetric in-batch cross-entropy on sentence-image cosines scaled by gamma = 10,
AttnGAN's DAMSM) on the training split. It serves
(a) `evaluate.py`: R-precision, FID / KID in its image-feature space, diversity;
(b) `train.py --text-encoder ENC|auto`: the GAN starts from its text encoder;
(c) `ads/personalize.py`: a shopper's interest and the candidate closest to it.

    python evaluate.py train-encoder [--data MANIFEST] --out encoders/emoji
"""

import argparse
import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from adgan.data.colors import DEFAULT_SUBGROUPS
from adgan.evaluation.metrics import r_precision
from adgan.helpers import (add_dataclass_flags, atomic_path, progress_verbosity, to_float,
                           write_json)
from adgan.text import tokenizer
from adgan.text.tokenizer import TextEncoder
from adgan.training.augment import random_translate
from adgan.training.losses import contrastive_loss
import data_loader

ENCODER_FILE = "encoder.keras"
DEFAULT_ENCODER = "encoders/emoji"


@keras.saving.register_keras_serializable(package="adgan")
class ImageEncoder(keras.Model):
    """Image [B, S, S, 3] in [-1, 1] -> (features [B, 8C], code [B, T]).

    Stride-2 convolutions (C, 2C, 4C, 8C channels, down to S/16), global average
    pooling (the features FID/KID use), then a dense projection into the text space.

    Args:
        image_size: S, input side (a multiple of 16).
        base_channels: C.
        code_dim: T, the sentence length of the text encoder.
    """

    def __init__(self, image_size=64, base_channels=32, code_dim=256, **kwargs):
        image = keras.Input((image_size, image_size, 3), name="images")
        x = image
        for i, channels in enumerate(base_channels * 2 ** np.arange(4)):
            x = layers.Conv2D(int(channels), 3, padding="same", name=f"conv_{i}")(x)
            x = layers.LeakyReLU(0.2)(x)
            x = layers.Conv2D(int(channels), 4, strides=2, padding="same", name=f"down_{i}")(x)
            x = layers.LeakyReLU(0.2)(x)
        features = layers.GlobalAveragePooling2D(dtype="float32", name="features")(x)
        code = layers.Dense(code_dim, dtype="float32", name="code")(features)
        super().__init__(inputs=image, outputs=[features, code], **kwargs)
        self.image_size = image_size
        self.base_channels = base_channels
        self.code_dim = code_dim

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "image_size": self.image_size,
                "base_channels": self.base_channels, "code_dim": self.code_dim}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="adgan")
class DualEncoder(keras.Model):
    """Tokenizer + text encoder + image encoder, trained with a symmetric InfoNCE loss.

    Args:
        vocabulary: tokens (ids 2.. in order; 0 = padding, 1 = unknown).
        image_size: side the image encoder works at; other sizes are resized (bilinear).
        sequence_length, embedding_dim, text_hidden_units: as `TextToImageGAN`'s, so its
            text encoder can start a GAN.
        image_channels: base channels of the image CNN.
        temperature: softmax temperature of the loss (1 / DAMSM's gamma).
        augment_shift: random translation of training images, a fraction of the side.
        seed: seed of the augmentation.
    """

    def __init__(self, vocabulary, image_size=64, sequence_length=16, embedding_dim=128,
                 text_hidden_units=128, image_channels=32, temperature=0.1, augment_shift=0.125,
                 seed=0, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary = list(vocabulary)
        self.image_size = image_size
        self.sequence_length = sequence_length
        self.embedding_dim = embedding_dim
        self.text_hidden_units = text_hidden_units
        self.image_channels = image_channels
        self.temperature = temperature
        self.augment_shift = augment_shift
        self.seed = seed
        self.vectorizer = tokenizer.make_text_vectorizer(self.vocabulary, sequence_length)
        self.text_encoder = TextEncoder(len(self.vocabulary) + 2, embedding_dim,
                                        text_hidden_units, sequence_length, name="text_encoder")
        self.image_encoder = ImageEncoder(image_size, image_channels, 2 * text_hidden_units,
                                          name="image_encoder")
        self.augment_seed = keras.random.SeedGenerator(seed, name="augment_seed")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="top1")
        self.built = True

    def get_config(self):
        return {"name": self.name, "vocabulary": self.vocabulary, "image_size": self.image_size,
                "sequence_length": self.sequence_length, "embedding_dim": self.embedding_dim,
                "text_hidden_units": self.text_hidden_units,
                "image_channels": self.image_channels, "temperature": self.temperature,
                "augment_shift": self.augment_shift, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_compile_config(self):
        return None  # compile() takes an optimizer object; re-compile to train further

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def resize(self, images):
        """float images [B, H, W, 3] -> [B, S, S, 3] at the encoder's size."""
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape[1] == self.image_size and images.shape[2] == self.image_size:
            return images
        return tf.image.resize(images, (self.image_size, self.image_size), "bilinear")

    def train_step(self, data):
        """One contrastive step on {"token_ids", "images"}."""
        shift = int(round(self.augment_shift * self.image_size))
        images = random_translate(self.resize(data["images"]), shift, self.augment_seed)
        with tf.GradientTape() as tape:
            sentences = self.text_encoder(data["token_ids"], training=True)[1]
            codes = self.image_encoder(images, training=True)[1]
            loss = contrastive_loss(codes, sentences, self.temperature)
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        similarity = tf.matmul(tf.math.l2_normalize(codes, 1),
                               tf.math.l2_normalize(sentences, 1), transpose_b=True)
        hits = tf.equal(tf.argmax(similarity, 1), tf.range(tf.shape(similarity)[0], dtype=tf.int64))
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(tf.reduce_mean(tf.cast(hits, tf.float32)))
        return {"loss": self.loss_tracker.result(), "top1": self.accuracy_tracker.result()}

    def embed_texts(self, texts, batch_size=256):
        """Unit sentence vectors [N, T] (numpy) of raw strings."""
        out = [tf.math.l2_normalize(self.text_encoder(
            self.vectorizer(tf.constant(list(texts[i:i + batch_size]))))[1], 1).numpy()
            for i in range(0, len(texts), batch_size)]
        return np.concatenate(out)

    def embed_images(self, images, batch_size=256):
        """(features [N, 8C], unit codes [N, T]) (numpy) of float images in [-1, 1]."""
        features, codes = [], []
        for i in range(0, len(images), batch_size):
            f, c = self.image_encoder(self.resize(images[i:i + batch_size]))
            features.append(f.numpy())
            codes.append(tf.math.l2_normalize(c, 1).numpy())
        return np.concatenate(features), np.concatenate(codes)

    def call(self, inputs, training=False):
        """(texts [B], images [B, S, S, 3]) -> cosine similarity matrix [B, B]."""
        texts, images = inputs
        sentences = self.text_encoder(self.vectorizer(texts), training=training)[1]
        codes = self.image_encoder(self.resize(images), training=training)[1]
        return tf.matmul(tf.math.l2_normalize(codes, 1), tf.math.l2_normalize(sentences, 1),
                         transpose_b=True)


def load_encoder(path):
    """Load a trained `DualEncoder` from its folder (or its .keras file)."""
    if os.path.isdir(path):
        path = os.path.join(path, ENCODER_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: train one with "
                                "`python evaluate.py train-encoder --out ENC`")
    return keras.saving.load_model(path)


# ----------------------------------------------------------------------------- training

@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Settings of `train_encoder` (`python evaluate.py train-encoder`)."""

    data: str = ""  # manifest; "" = the shipped emoji manifest
    out: str = DEFAULT_ENCODER
    image_column: str = "image"
    caption_columns: tuple = data_loader.DEFAULT_CAPTION_COLUMNS
    split: str = "train"
    groups: tuple = ()  # rows of the manifest's `group` column; () = all
    styles: tuple = ()
    image_size: int = 32  # generated images of any size are resized to this
    batch_size: int = 64
    epochs: int = 30  # 30 x 8,465 rows of the shipped set: the steps of 100 on the old two styles
    learning_rate: float = 1e-3
    image_channels: int = 32
    sequence_length: int = 16
    embedding_dim: int = 128
    text_hidden_units: int = 128
    max_vocabulary: int = 8000
    color_augment: int = 0  # recoloured copies of the colour subgroups' rows (colors.py)
    color_subgroups: tuple = DEFAULT_SUBGROUPS
    style_words: bool = True  # name the style in about half of the captions (styles.py)
    # 1, not the runs' 0: a GAN whose text encoder is the evaluator's own (`train.py
    # --text-encoder auto` with the same data and seed) would be judged by itself.
    seed: int = 1
    verbose: int = 1


def encoder_manifest(config):
    """The manifest an `EncoderConfig` trains on."""
    return config.data or data_loader.DEFAULT_MANIFEST


def encoder_rows(config, split, caption_columns, recolor=False):
    """(rows, report) of the encoder's manifest in `split`, in its groups and styles."""
    manifest = encoder_manifest(config)
    recolorable = (data_loader.recolor_filter(manifest, config.color_subgroups,
                                              config.color_augment) if recolor else None)
    return data_loader.load_examples(manifest, config.image_size, config.image_column,
                                     caption_columns, split or None,
                                     {"group": config.groups, "style": config.styles},
                                     recolorable)


def retrieval_report(encoder, config):
    """Image -> caption retrieval of real images (top-1 among 100), per split."""
    report = {}
    for split in ("train", "test"):
        try:
            rows, _ = encoder_rows(config, split, config.caption_columns[:2])
        except data_loader.ManifestError:
            continue
        texts = [c[0] for c in rows["captions"]]
        images = np.stack([data_loader.load_image(p, config.image_size) for p in rows["path"]])
        # each image's first caption among 99 others (R-precision of real images)
        report[f"retrieval_top1_{split}"] = r_precision(
            encoder.embed_images(to_float(images))[1], np.arange(len(texts)),
            encoder.embed_texts(texts), texts, repeats=1, seed=config.seed)[0]
    return report


def train_encoder(config):
    """Train a `DualEncoder` on a manifest's split and save it in `config.out`; returns it.

    Raises `data_loader.ManifestError` when the manifest has no usable row.
    """
    examples, _ = encoder_rows(config, config.split, config.caption_columns, recolor=True)
    style_words = (data_loader.read_style_words(encoder_manifest(config), config.styles)
                   if config.style_words else {})
    vocabulary = tokenizer.examples_vocabulary(examples, config.max_vocabulary,
                                                 config.color_augment, style_words)
    keras.utils.set_random_seed(config.seed)
    encoder = DualEncoder(vocabulary, config.image_size, config.sequence_length,
                          config.embedding_dim, config.text_hidden_units, config.image_channels,
                          seed=config.seed)
    encoder.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    dataset = data_loader.make_dataset(examples, config.image_size,
                                       min(config.batch_size, len(examples)),
                                       seed=config.seed, vectorizer=encoder.vectorizer,
                                       color_augment=config.color_augment,
                                       style_words=style_words)
    started = time.time()
    history = encoder.fit(dataset, epochs=config.epochs, verbose=progress_verbosity(config.verbose))
    seconds = time.time() - started

    os.makedirs(config.out, exist_ok=True)
    with atomic_path(os.path.join(config.out, ENCODER_FILE)) as tmp:
        encoder.save(tmp)
    tokenizer.save_vocabulary(vocabulary, os.path.join(config.out, "vocabulary.txt"))
    report = {"config": dataclasses.asdict(config), "examples": len(examples),
              "tokens": len(vocabulary), "seconds": round(seconds, 1),
              "final_loss": float(history.history["loss"][-1]),
              "final_batch_top1": float(history.history["top1"][-1]),
              **retrieval_report(encoder, config)}
    write_json(report, os.path.join(config.out, "report.json"))
    return encoder


def main(argv=None, prog="evaluate.py train-encoder"):
    """CLI (`python evaluate.py train-encoder ...`): train and save; returns the folder."""
    parser = argparse.ArgumentParser(prog=prog, description="Train the dual text-image encoder.",
                                     argument_default=argparse.SUPPRESS)
    config = EncoderConfig(**vars(add_dataclass_flags(parser, EncoderConfig).parse_args(argv)))
    try:
        train_encoder(config)
    except data_loader.ManifestError as error:
        parser.exit(1, f"encoder: {error}\n")
    print(f"encoder: saved in {config.out}")
    return config.out
