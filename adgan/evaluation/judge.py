"""The independent judge: a concept classifier that no generator ever trained against.

The in-domain dual encoder (encoder.py) shares the family, data and training of the
text encoder the GAN learns against, so a generator can satisfy it without drawing
the object (its R-precision said 0.72 where people saw silhouettes). The judge is
built to be unlike anything in training:
- a pre-activation residual CNN with batch normalisation and ReLU (the discriminator
  and the dual encoder are plain LeakyReLU convolutions), trained by cross-entropy
  over the catalogue's concepts (not contrastively, and with no text at all);
- trained on real images only, of every drawing style and every group, the held-out
  concepts included (so it can read them), under strong augmentation (flip, shift,
  zoom, rotation, brightness, contrast, saturation, blur, erasing, grey);
- used by nothing but `evaluate.py`: no loss, no gate, no sampler reads it.

A few real images of each concept (`holdout_per_concept`, drawn per concept among its
styles) are kept out of its training. Two ceilings follow, per style: the real drawings
it trained on (what a drawing as good as the catalogue's scores: the ceiling a generated
drawing is divided by) and those it never saw (that it recognises a concept, not a
picture it memorised).

    python evaluate.py train-judge [--data MANIFEST] --out models/judge
"""

import argparse
import dataclasses
import os
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import layers

from adgan.evaluation.metrics import r_precision
from adgan.helpers import (CHECKOUT, add_dataclass_flags, atomic_path, progress_verbosity,
                           to_float, write_json)
from adgan.text.tokenizer import clean_text
import data_loader

JUDGE_FILE = "judge.keras"
CONCEPTS_FILE = "concepts.csv"  # one row per class: name_en, name_zh, group, split
IMAGES_FILE = "images.csv"  # its real images: image (from the folder), style, concept, held_out
DEFAULT_JUDGE = os.path.join(CHECKOUT, "models", "judge")
CONCEPT_COLUMNS = ("name_en", "name_zh", "group", "split", "keywords_en", "keywords_zh")
WHITE = 1.0  # product shots sit on white; pixels an augmentation uncovers are white


def augmentation(seed=0):
    """Strong, label-preserving augmentation of images in [-1, 1] (active in training only).

    No hue change: a concept's colour can be what names it (a red vs a green apple)."""
    fill = dict(fill_mode="constant", fill_value=WHITE)
    value_range = (-1.0, 1.0)
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomTranslation(0.1, 0.1, seed=seed + 1, **fill),
        layers.RandomZoom((-0.2, 0.3), seed=seed + 2, **fill),
        layers.RandomRotation(0.05, seed=seed + 3, **fill),
        layers.RandomBrightness(0.15, value_range=value_range, seed=seed + 4),
        layers.RandomContrast(0.3, value_range=value_range, seed=seed + 5),
        layers.RandomSaturation((0.3, 0.7), value_range=value_range, seed=seed + 6),
        layers.RandomGaussianBlur(0.3, kernel_size=3, sigma=1.0, value_range=value_range,
                                  seed=seed + 7),
        layers.RandomErasing(0.25, scale=(0.02, 0.12), fill_value=WHITE,
                             value_range=value_range, seed=seed + 8),
        layers.RandomGrayscale(0.1, seed=seed + 9),
    ], name="augmentation")


def residual_block(x, channels, stride, name):
    """Pre-activation residual block (He et al. 2016): BN-ReLU-conv3x3 twice, plus the
    input (a strided 1x1 projection when the shape changes). [B, H, W, C] ->
    [B, H / stride, W / stride, channels]."""
    shortcut = x
    x = layers.BatchNormalization(name=f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    if stride != 1 or shortcut.shape[-1] != channels:
        shortcut = layers.Conv2D(channels, 1, strides=stride, use_bias=False,
                                 name=f"{name}_project")(x)
    x = layers.Conv2D(channels, 3, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv1")(x)
    x = layers.BatchNormalization(name=f"{name}_bn2")(x)
    x = layers.ReLU(name=f"{name}_relu2")(x)
    x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    return layers.Add(name=f"{name}_add")([shortcut, x])


def concept_judge(num_concepts, image_size=32, channels=(48, 96, 192), dropout=0.3,
                  seed=0):
    """Image [B, S, S, 3] in [-1, 1] -> concept logits [B, num_concepts] (float32).

    A 3x3 stem, then per entry of `channels` a stage of two residual blocks whose first
    halves the side (32 -> 16 -> 8 -> 4 with three), batch norm, ReLU, global average
    pooling, dropout and a linear classifier."""
    images = keras.Input((image_size, image_size, 3), name="images")
    x = augmentation(seed)(images)
    x = layers.Conv2D(channels[0], 3, padding="same", use_bias=False, name="stem")(x)
    for stage, width in enumerate(channels):
        x = residual_block(x, width, 2, f"stage{stage}_a")
        x = residual_block(x, width, 1, f"stage{stage}_b")
    x = layers.BatchNormalization(name="head_bn")(x)
    x = layers.ReLU(name="head_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, seed=seed)(x)
    logits = layers.Dense(num_concepts, dtype="float32", name="concept_logits")(x)
    return keras.Model(images, logits, name="concept_judge")


class Judge:
    """A trained judge: the classifier, its concepts and its real images (some held out).

    concepts: DataFrame of `CONCEPT_COLUMNS`, row k = class k.
    images: DataFrame (path: absolute image path, style, concept: class index, held_out:
        kept out of its training).
    """

    def __init__(self, model, concepts, images):
        self.model = model
        self.concepts = concepts
        self.images = images
        self.image_size = int(model.input_shape[1])
        # a concept's name, any case, in English or Chinese -> its class; then its keywords
        # ("口红" names lipstick, 唇膏), where no name is the word
        self.index = {}
        for columns in (("name_en", "name_zh"), ("keywords_en", "keywords_zh")):
            for column in columns:
                for k, cell in enumerate(concepts[column]):
                    for word in cell.split("|"):
                        if word.strip():
                            self.index.setdefault(word.strip().lower(), k)

    def logits(self, images, batch_size=256):
        """Concept logits [N, K] (numpy) of uint8 images [N, H, W, 3] of any side (resized
        with area averaging, as a smaller picture of the same drawing)."""
        return self._run(self.model, images, batch_size)

    def features(self, images, batch_size=256):
        """The judge's pooled features [N, C] (before its concept layer) of uint8 images of
        any side: where two drawings are near for the judge (the copy check)."""
        if not hasattr(self, "_embedder"):
            self._embedder = keras.Model(self.model.input, self.model.get_layer("pool").output)
        return self._run(self._embedder, images, batch_size)

    def _run(self, network, images, batch_size):
        out = []
        for start in range(0, len(images), batch_size):
            batch = tf.convert_to_tensor(to_float(images[start:start + batch_size]))
            if batch.shape[1] != self.image_size:
                batch = tf.image.resize(batch, (self.image_size, self.image_size), "area")
            out.append(np.asarray(network(batch, training=False), np.float32))
        width = network.output_shape[-1]
        return np.concatenate(out) if out else np.zeros((0, width), np.float32)

    def concept_of(self, name):
        """The class of a concept named in English or Chinese (KeyError if none)."""
        return self.index[clean_text(name)[0].lower()]

    def knows(self, name):
        """Whether `concept_of(name)` finds a concept."""
        return clean_text(name)[0].lower() in self.index


def top1_among(logits, true, pool, candidates=100, repeats=5, seed=0):
    """Share of images whose true class outscores `candidates - 1` random other classes.

    logits [N, K]; true [N] class indices, each in `pool`, the classes the distractors
    are drawn from. Returns (mean, std) over repeats, (None, None) without images: the
    judge's R-precision (`metrics.r_precision` with one "prompt" a class of the pool)."""
    pool = np.asarray(pool)
    if not len(true):
        return None, None
    position = {concept: i for i, concept in enumerate(pool)}
    return r_precision(np.asarray(logits)[:, pool], [position[c] for c in true],
                       np.eye(len(pool)), np.arange(len(pool)), candidates, repeats, seed)


def load_judge(path=DEFAULT_JUDGE):
    """The trained `Judge` in folder `path` (FileNotFoundError saying how to make one)."""
    file = os.path.join(path, JUDGE_FILE)
    if not os.path.exists(file):
        raise FileNotFoundError(f"{file} not found: train the judge with "
                                "`python evaluate.py train-judge --out DIR`")
    model = keras.saving.load_model(file)
    concepts = pd.read_csv(os.path.join(path, CONCEPTS_FILE), dtype=str, keep_default_na=False)
    images = pd.read_csv(os.path.join(path, IMAGES_FILE), dtype=str, keep_default_na=False)
    images = pd.DataFrame({"path": [os.path.normpath(os.path.join(path, p))
                                    for p in images["image"]],
                           "style": images["style"],
                           "concept": images["concept"].astype(int),
                           "held_out": images["held_out"] == "True"})
    return Judge(model, concepts, images)


# ----------------------------------------------------------------------------- training

@dataclasses.dataclass(frozen=True)
class JudgeConfig:
    """Settings of `train_judge` (`python evaluate.py train-judge`)."""

    data: str = ""  # manifest; "" = the shipped emoji manifest
    out: str = DEFAULT_JUDGE
    image_size: int = 32  # generated images of any size are resized to this
    channels: tuple = (48, 96, 192)
    dropout: float = 0.3
    batch_size: int = 64
    epochs: int = 35
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    holdout_per_concept: int = 2  # real images of a concept kept out of training (the ceiling)
    min_images_to_hold_out: int = 4  # concepts with fewer images give none
    seed: int = 7  # not the runs' 0 nor the dual encoder's 1
    verbose: int = 1


def catalogue(manifest):
    """Every usable row of a manifest with its concept (its first caption: the English
    name, else the Chinese), as (rows, concepts): rows have path, style and concept
    (class index); concepts one row per class, in order of first appearance, with the
    concept's `CONCEPT_COLUMNS` cells (blank where the manifest lacks the column)."""
    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    for column in ("image", "name_en", "name_zh"):
        if column not in frame:
            raise data_loader.ManifestError(f"{manifest}: the judge needs an {column!r} column")
    rows = data_loader.read_manifest(manifest, "image", ("name_en", "name_zh"))
    for column in CONCEPT_COLUMNS:
        rows[column] = frame[column].tolist() if column in frame else [""] * len(frame)
    rows = rows[[bool(c) and os.path.exists(p) for c, p in zip(rows["captions"], rows["path"])]]
    if rows.empty:
        raise data_loader.ManifestError(f"{manifest}: no row with a name and an image file")
    names = [c[0] for c in rows["captions"]]
    index = {name: k for k, name in enumerate(dict.fromkeys(names))}
    rows = rows.assign(concept=[index[n] for n in names]).reset_index(drop=True)
    concepts = rows.drop_duplicates("concept")[list(CONCEPT_COLUMNS)].reset_index(drop=True)
    return rows, concepts


def choose_holdout(rows, per_concept, min_images, seed):
    """Boolean mask [N] of the rows kept out of training: `per_concept` random images of
    each concept with at least `min_images`."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(rows), bool)
    for _, members in rows.groupby("concept").indices.items():
        if len(members) >= min_images:
            held[rng.choice(members, per_concept, replace=False)] = True
    return held


def save_judge(model, concepts, rows, out):
    """Write a trained judge's folder (the model without its optimizer's state, its
    concepts, its images with `held_out`, their paths from the folder); returns the
    `Judge`."""
    inference = keras.models.clone_model(model)
    inference.set_weights(model.get_weights())
    with atomic_path(os.path.join(out, JUDGE_FILE)) as tmp:
        inference.save(tmp)
    with atomic_path(os.path.join(out, CONCEPTS_FILE)) as tmp:
        concepts.to_csv(tmp, index=False)
    with atomic_path(os.path.join(out, IMAGES_FILE)) as tmp:
        pd.DataFrame({"image": [os.path.relpath(p, os.path.abspath(out)) for p in rows["path"]],
                      "style": rows["style"], "concept": rows["concept"],
                      "held_out": rows["held_out"]}).to_csv(tmp, index=False)
    return Judge(inference, concepts, rows[["path", "style", "concept", "held_out"]])


def train_judge(config):
    """Train the judge on a manifest's real images (every split, style and group) and save
    it in `config.out`; returns the `Judge`."""
    manifest = config.data or data_loader.DEFAULT_MANIFEST
    data_loader.check_manifest_file(manifest)
    rows, concepts = catalogue(manifest)
    held = choose_holdout(rows, config.holdout_per_concept, config.min_images_to_hold_out,
                          config.seed)
    train = rows[~held]
    images = np.stack([data_loader.load_image(p, config.image_size) for p in train["path"]])
    labels = train["concept"].to_numpy(np.int32)

    keras.utils.set_random_seed(config.seed)
    model = concept_judge(len(concepts), config.image_size, tuple(map(int, config.channels)),
                          config.dropout, config.seed)
    steps = config.epochs * -(-len(images) // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                  loss=keras.losses.CategoricalCrossentropy(
                      from_logits=True, label_smoothing=config.label_smoothing),
                  metrics=["accuracy"])
    labels = keras.utils.to_categorical(labels, len(concepts)).astype(np.float32)
    dataset = (tf.data.Dataset.from_tensor_slices((images, labels))
               .shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
               .batch(config.batch_size)
               .map(lambda x, y: (tf.cast(x, tf.float32) / 127.5 - 1.0, y),
                    num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    os.makedirs(config.out, exist_ok=True)
    # a killed training resumes from its last finished epoch (`--out` again)
    backup = keras.callbacks.BackupAndRestore(os.path.join(config.out, "backup"))
    started = time.time()
    history = model.fit(dataset, epochs=config.epochs, callbacks=[backup], shuffle=False,
                        verbose=progress_verbosity(config.verbose))
    seconds = time.time() - started

    judge = save_judge(model, concepts, rows.assign(held_out=held), config.out)
    holdout = rows[held]
    held_logits = judge.logits(np.stack([data_loader.load_image(p, config.image_size)
                                         for p in holdout["path"]])) if len(holdout) else None
    write_json({"config": dataclasses.asdict(config),
                "manifest": os.path.relpath(os.path.abspath(manifest), os.path.abspath(config.out)),
                "concepts": len(concepts), "train_images": len(images),
                "held_out_images": int(held.sum()), "parameters": model.count_params(),
                "seconds": round(seconds, 1), "epochs": config.epochs,
                "final_loss": float(history.history["loss"][-1]),
                "final_train_accuracy": float(history.history["accuracy"][-1]),
                # top-1 among every concept of the real images it never saw
                "held_out_accuracy": float(np.mean(held_logits.argmax(1)
                                                   == holdout["concept"].to_numpy()))
                if len(holdout) else None},
               os.path.join(config.out, "report.json"))
    return judge


def main(argv=None, prog="evaluate.py train-judge"):
    """CLI (`python evaluate.py train-judge ...`): train and save; returns the folder."""
    parser = argparse.ArgumentParser(prog=prog, description="Train the independent judge.",
                                     argument_default=argparse.SUPPRESS)
    config = JudgeConfig(**vars(add_dataclass_flags(parser, JudgeConfig).parse_args(argv)))
    try:
        train_judge(config)
    except data_loader.ManifestError as error:
        parser.exit(1, f"judge: {error}\n")
    print(f"judge: saved in {config.out}")
    return config.out
