"""Train the learned 4x up-sampler (`upsampler.Upsampler`) on real pairs, into a run folder.

    python data/build_emoji.py --size 256 --out /tmp/emoji256      # the 256 px copy of the set
    adgan-train-upsampler --data /tmp/emoji256/captions.csv --out RUN

Pairs: every training-split picture at 4S (its 256 px file) and at S made the way the
generator's training images are (`upsampler.low_resolution`). Each step takes random
aligned patches (`--patch` px on the small side), flipped at random; Gaussian noise of a
random strength up to `--noise` on the small side makes the network treat the
generator's speckle and stripes as noise instead of sharpening them (compare_upsamplers.py
measures both ways on generated images). Loss: L1 + `--feature-weight` x the feature
loss on the evaluator's image encoder (`--encoder`, `losses.feature_l1_loss`); with
`--feature-weight 0` no evaluator is needed.

Writes RUN/upsampler.keras (under a temporary name, then renamed) and
RUN/upsampler_report.json. The state is saved every `--checkpoint-every` steps in
RUN/upsampler_checkpoints/ and a second call resumes from it.
"""

import argparse
import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from adgan.drawing.sampling import generate_images
from adgan.helpers import add_dataclass_flags, atomic_path, run_command, to_float, write_json
from adgan.runs.layout import run_path
from adgan.runs.rows import concept_names
from adgan.runs.run import Run
from adgan.text.encoder import DEFAULT_ENCODER, load_encoder
from adgan.training.losses import feature_l1_loss, pixel_l1_loss
from adgan.upsampling.upsampler import (SCALE, Upsampler, feature_extractor, gaussian_kernel,
                                        low_resolution)
import data_loader

CHECKPOINTS = "upsampler_checkpoints"
REPORT = "upsampler_report.json"


@dataclasses.dataclass(frozen=True)
class UpsamplerConfig:
    """Settings of one up-sampler training run (each is a `--flag`)."""

    data: str = ""  # manifest of the 4S px pictures (required)
    out: str = ""  # run folder to write upsampler.keras into (required)
    native_size: int = 64  # S: the generator's size
    channels: int = 32
    num_convs: int = 6
    patch: int = 32  # patch side on the small side (4x that on the large)
    batch_size: int = 32
    steps: int = 2500
    learning_rate: float = 1e-3
    feature_weight: float = 0.1
    encoder: str = DEFAULT_ENCODER
    noise: float = 0.03  # largest std of the noise on the small side, in [-1, 1] units
    # a GAN run whose drawings' flat patches give artefact "noise" to add to the small side
    # (RealSR's noise injection): "" = none
    artifacts_from: str = ""
    artifact_images: int = 1000
    init_from: str = ""  # an upsampler.keras to start from (fine-tuning), "" = from scratch
    max_images: int = 0  # 0 = every training picture
    checkpoint_every: int = 250
    seed: int = 0
    verbose: int = 1


def load_pairs(manifest, native_size, split="train", max_images=0):
    """(small uint8 [N, S, S, 3], large uint8 [N, 4S, 4S, 3], report) of a split's pictures
    (`max_images` of them, drawn at random with a fixed seed, when given)."""
    rows, report = data_loader.load_examples(manifest, native_size * SCALE, split=split)
    if max_images and max_images < len(rows):  # a seeded sample: the rows come group by group
        rows = rows.sample(max_images, random_state=0)
    large = np.stack([data_loader.load_image(p, native_size * SCALE) for p in rows["path"]])
    small = np.stack([low_resolution(image, native_size) for image in large])
    return small, large, report


def sample_batch(small, large, patch, batch_size, rng, artifacts=None):
    """Random aligned patches: (small float [B, P, P, 3], large float [B, 4P, 4P, 3]); with
    `artifacts` [M, P/2, P/2, 3], half the small patches get four random ones added."""
    index = rng.integers(0, len(small), batch_size)
    corner = rng.integers(0, small.shape[1] - patch + 1, (batch_size, 2))
    flip = rng.random(batch_size) < 0.5
    lo, hi = [], []
    for i, (y, x), f in zip(index, corner, flip):
        a = small[i, y:y + patch, x:x + patch]
        b = large[i, SCALE * y:SCALE * (y + patch), SCALE * x:SCALE * (x + patch)]
        lo.append(a[:, ::-1] if f else a)
        hi.append(b[:, ::-1] if f else b)
    lo, hi = to_float(np.stack(lo)), to_float(np.stack(hi))
    if artifacts is not None:
        chosen = tiled(artifacts, batch_size, patch, rng)
        lo = lo + chosen * (rng.random(batch_size) < 0.5)[:, None, None, None]
    return lo, hi


def generated_pictures(run, count, seed):
    """uint8 [count, S, S, 3]: an opened `Run`'s ungated draws of its training concepts
    (varied styles)."""
    names = concept_names(run.config)
    prompts = list(np.random.default_rng(seed).permutation(names)[:count])
    prompts += prompts[:count - len(prompts)] * (count // max(len(prompts), 1))  # few names
    drawn = generate_images(run.model, prompts[:count], 1, seed, None, 1, run.style_words)
    return drawn["images"][:, 0]


def artifact_patches(pictures, window, keep=0.3):
    """Float [N, W, W, 3]: the high-pass residual (picture - Gaussian blur, sigma 1) of the
    flattest `keep` of the W x W windows that lie wholly on the product, centred: what the
    generator adds to a smooth surface (speckle, stripes), to add to real training inputs."""
    images = tf.constant(to_float(pictures))
    blurred = tf.nn.depthwise_conv2d(tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]], "SYMMETRIC"),
                                     gaussian_kernel(1.0, 2), [1, 1, 1, 1], "VALID")
    stride = [1, max(1, window // 2), max(1, window // 2), 1]

    def windows(x):
        found = tf.image.extract_patches(x, [1, window, window, 1], stride, [1, 1, 1, 1], "VALID")
        return tf.reshape(found, [-1, window, window, x.shape[-1]]).numpy()

    residual, smooth = windows(images - blurred), windows(blurred)
    on_product = windows(tf.cast(tf.reduce_min(images, -1, keepdims=True) < 0.88, tf.float32))
    inside = on_product.min(axis=(1, 2, 3)) > 0
    if not inside.any():
        raise ValueError("no window of the generated pictures lies wholly on a product")
    residual, flatness = residual[inside], smooth[inside].std(axis=(1, 2, 3))
    flattest = residual[np.argsort(flatness)[:max(1, int(len(residual) * keep))]]
    return flattest - flattest.mean(axis=(1, 2), keepdims=True)


def tiled(artifacts, count, patch, rng):
    """[count, P, P, 3]: random artefact windows [M, W, W, 3] laid in a (P/W) x (P/W) grid."""
    side = patch // artifacts.shape[1]
    tiles = artifacts[rng.integers(0, len(artifacts), (count, side, side))]
    return tiles.transpose(0, 1, 3, 2, 4, 5).reshape(count, patch, patch, 3)


def make_train_step(model, optimizer, features, feature_weight, noise):
    """A compiled step: (small, large, seed) -> (total, l1, feature) losses."""

    @tf.function
    def step(small, large, seed):
        strength = tf.random.stateless_uniform([tf.shape(small)[0], 1, 1, 1], seed, 0.0, noise)
        noisy = small + strength * tf.random.stateless_normal(tf.shape(small), seed + 1)
        with tf.GradientTape() as tape:
            upsampled = model(noisy, training=True)
            l1 = pixel_l1_loss(upsampled, large)
            feature = tf.constant(0.0)
            if features is not None:
                feature = feature_l1_loss(features(upsampled)[1], features(large)[1])
            total = l1 + feature_weight * feature
        optimizer.apply_gradients(zip(tape.gradient(total, model.trainable_variables),
                                      model.trainable_variables))
        return total, l1, feature

    return step


def restore(model, optimizer, out):
    """(checkpoint, manager) for OUT/upsampler_checkpoints, restored to its latest save."""
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(out, CHECKPOINTS), 2)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
    return checkpoint, manager


def train_upsampler(config):
    """Train per `config`; returns the path of the written upsampler.keras."""
    keras.utils.set_random_seed(config.seed)
    started = time.time()
    small, large, report = load_pairs(config.data, config.native_size, "train",
                                      config.max_images)
    features = (feature_extractor(load_encoder(config.encoder))
                if config.feature_weight > 0 else None)
    model = Upsampler(config.channels, config.num_convs)
    if config.init_from:
        model.set_weights(keras.saving.load_model(config.init_from).get_weights())
    artifacts = (artifact_patches(generated_pictures(Run(config.artifacts_from, gated=False),
                                                     config.artifact_images, config.seed),
                                  config.patch // 2) if config.artifacts_from else None)
    optimizer = keras.optimizers.Adam(  # cosine decay: a short run still ends annealed
        keras.optimizers.schedules.CosineDecay(config.learning_rate, config.steps, alpha=0.05))
    optimizer.build(model.trainable_variables)
    checkpoint, manager = restore(model, optimizer, config.out)
    step_fn = make_train_step(model, optimizer, features, config.feature_weight, config.noise)
    first = int(optimizer.iterations.numpy())
    rng = np.random.default_rng([config.seed, first])  # a resumed run draws new patches
    losses = []
    for step in range(first, config.steps):
        batch = sample_batch(small, large, config.patch, config.batch_size, rng, artifacts)
        losses.append([float(v) for v in step_fn(*batch, tf.constant([config.seed, step]))])
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            manager.save(checkpoint_number=step + 1)
            if config.verbose:
                mean = np.mean(losses[-config.checkpoint_every:], 0)
                print(f"train_upsampler: step {step + 1}/{config.steps}: loss {mean[0]:.4f} "
                      f"(L1 {mean[1]:.4f}, feature {mean[2]:.4f}), "
                      f"{time.time() - started:.0f} s", flush=True)
    path = run_path(config.out, "upsampler")
    with atomic_path(path) as tmp:
        model.save(tmp)
    write_json({"config": dataclasses.asdict(config), "pairs": len(small),
                "artifact_patches": 0 if artifacts is None else len(artifacts),
                "bad_rows": report["skipped"], "steps": config.steps, "resumed_from": first,
                "parameters": model.count_params(), "seconds": round(time.time() - started, 1),
                "final_losses": dict(zip(("total", "l1", "feature"),
                                         np.mean(losses[-50:], 0).tolist())) if losses else {}},
               os.path.join(config.out, REPORT))
    return path


def main(argv=None):
    """CLI entry point; returns the path of the written up-sampler."""
    parser = add_dataclass_flags(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                                 UpsamplerConfig)
    args = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    config = UpsamplerConfig(**args)
    if not config.data or not config.out:
        parser.error("--data (the 4S px manifest) and --out (a run folder) are required")
    if config.patch > config.native_size or min(config.steps, config.batch_size, config.patch) < 1:
        parser.error(f"--patch must be in [1, --native-size], --steps and --batch-size >= 1; "
                     f"got {config.patch}, {config.steps}, {config.batch_size}")
    try:
        path = train_upsampler(config)
    except (OSError, ValueError) as error:  # a bad manifest or evaluator: ValueError
        parser.exit(1, f"train_upsampler: {error}\n")
    print(f"train_upsampler: wrote {path}")
    return path


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "train_upsampler")


if __name__ == "__main__":
    console_main()
