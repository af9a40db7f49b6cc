"""Calibrating the discriminator gate (gate.py) of a finished run:
`adgan-calibrate --run RUN [--gamma G]` writes RUN/final/calibration.json (`train.py`
does this at the end of every run), and every command reads it back with `load_gate`.

A run without a calibration has one behaviour everywhere: `load_gate` refuses with a
`RunError` that says how to calibrate it, unless the caller asks for no gate.
"""

import argparse
import math
import os

import numpy as np
import tensorflow as tf

from adgan.drawing.gate import DEFAULT_GAMMA, Gate, auc, describe, drs_shift, fit_logistic
from adgan.drawing.sampling import candidate_draws
from adgan.helpers import run_command, write_json
from adgan.runs.artifacts import load_model
from adgan.runs.layout import LAYOUT, RunError, load_config, read_json, run_path
from adgan.runs.rows import config_style_words, manifest_rows
from adgan.text import tokenizer
import data_loader
from data_loader import to_float_tensor

MAX_CALIBRATION_PAIRS = 512


def calibrate(gan, prompts, images, seed=0, gamma=DEFAULT_GAMMA):
    """Fit the gate on real pairs (prompts, uint8 images [N, S, S, 3]) vs EMA fakes of the
    prompts."""
    token_ids = gan.vectorizer(tf.constant(list(prompts)))
    sentence, text_inputs = gan.text_inputs(token_ids)
    real = to_float_tensor(images)
    noise, _ = candidate_draws(tf.fill([len(prompts)], tf.constant(seed, tf.int64)),
                               tf.range(len(prompts), dtype=tf.int64), gan.noise_dim)
    fake = gan.ema_generator([noise, *text_inputs], training=False)
    real_logits = gan.discriminator([real, sentence], training=False)[:, 0].numpy()
    fake_logits = gan.discriminator([fake, sentence], training=False)[:, 0].numpy()
    slope, intercept = fit_logistic(real_logits, fake_logits)
    fake_log_odds = slope * fake_logits + intercept
    real_scores = 1.0 / (1.0 + np.exp(-(slope * real_logits + intercept)))
    fake_scores = 1.0 / (1.0 + np.exp(-fake_log_odds))
    max_log_odds = float(fake_log_odds.max())
    return {"pairs": len(prompts), "slope": slope, "intercept": intercept,
            "max_log_odds": max_log_odds, "gamma": gamma,
            "shift": drs_shift(fake_log_odds, max_log_odds, gamma),
            "auc_real_vs_fake": auc(real_logits, fake_logits),
            "real_score_mean": float(real_scores.mean()),
            "fake_score_mean": float(fake_scores.mean()),
            "real_logit_mean": float(real_logits.mean()),
            "fake_logit_mean": float(fake_logits.mean()),
            "fake_log_odds": [round(float(v), 5) for v in fake_log_odds]}


def load_calibration(run_dir):
    """The run's gate calibration; a `RunError` saying how to make one if it has none."""
    file = run_path(run_dir, "calibration")
    if not os.path.exists(file):
        raise RunError(f"{run_dir} has no {LAYOUT['calibration']}: calibrate its discriminator "
                       f"gate with `adgan-calibrate --run {run_dir}` (or draw without the gate: "
                       "--no-gate)")
    return read_json(file, "the gate's calibration")


def load_gate(run_dir, gamma=None, min_score=None, gated=True):
    """The run's calibrated `Gate` (DRS with the calibrated or given `gamma`, or a fixed
    `min_score`).

    An uncalibrated run is a `RunError`, unless `gated` is False (the caller keeps
    the first candidate): then its scores are sigmoid(D's raw logit) (`Gate.ungated`).
    """
    if not gated and not os.path.exists(run_path(run_dir, "calibration")):
        return Gate.ungated()
    calibration = load_calibration(run_dir)
    try:
        numbers = [calibration[k] for k in ("slope", "intercept", "max_log_odds", "gamma")]
        numbers += list(calibration["fake_log_odds"])
        if not all(isinstance(n, (int, float)) and math.isfinite(n) for n in numbers):
            raise ValueError("slope, intercept, max_log_odds, gamma and fake_log_odds must be "
                             "finite numbers")
        return Gate.from_calibration(calibration, gamma, min_score)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RunError(f"{run_path(run_dir, 'calibration')}: not a gate calibration "
                       f"({type(error).__name__}: {error}); recalibrate with "
                       f"`adgan-calibrate --run {run_dir}`") from None


def calibration_pairs(config, vectorizer, split, seed=0):
    """(prompts, uint8 images [N, S, S, 3]) of a run's manifest rows in `split`, or None if none.

    Every caption of each row makes one pair; captions without a known token are
    left out; at most `MAX_CALIBRATION_PAIRS` pairs, drawn with `seed`. A run trained on
    bundles adds its share of them (the training stream's first ones, `bundles.py`), so
    the gate also knows what a good two-product picture looks like.
    """
    try:
        frame, _ = manifest_rows(config, split)
    except data_loader.ManifestError:
        return None
    pairs = [(caption, path) for path, captions in zip(frame["path"], frame["captions"])
             for caption in captions]
    known = tokenizer.count_known_tokens(vectorizer, [caption for caption, _ in pairs])
    pairs = [pair for pair, count in zip(pairs, known) if count > 0]
    if not pairs:
        return None
    if len(pairs) > MAX_CALIBRATION_PAIRS:
        keep = np.random.default_rng(seed).choice(len(pairs), MAX_CALIBRATION_PAIRS, replace=False)
        pairs = [pairs[i] for i in sorted(keep)]
    images = np.stack([data_loader.load_image(path, config.image_size) for _, path in pairs])
    prompts = [caption for caption, _ in pairs]
    if config.bundle_share and split == config.split:
        source = data_loader.bundle_source(frame, config.image_size, config_style_words(config),
                                           seed)
        made = [source(k) for k in range(int(round(len(pairs) * config.bundle_share)))]
        prompts += [caption.decode("utf-8") for _, caption, *_ in made]
        images = np.concatenate([images, np.stack([picture for picture, *_ in made])])
    return prompts, images


def calibrate_run(gan, run_dir, gamma=DEFAULT_GAMMA):
    """Calibrate a run's gate and write RUN/final/calibration.json; returns the calibration.

    The fit uses the training rows: the concepts the model is asked to draw (the
    shipped `test` split holds unseen concepts, which D has never been taught to
    judge). D's real-vs-fake AUC on the held-out rows is recorded beside it.
    """
    config = load_config(run_dir)
    pairs = calibration_pairs(config, gan.vectorizer, config.split, config.seed)
    if pairs is None:
        raise RunError(f"{config.manifest}: no usable (caption, image) pair to calibrate on")
    calibration = {"split": config.split or "all",
                   **calibrate(gan, *pairs, config.seed, gamma)}
    held_out = (calibration_pairs(config, gan.vectorizer, "test", config.seed)
                if config.split == "train" else None)
    if held_out:
        check = calibrate(gan, *held_out, config.seed, gamma)
        calibration["held_out"] = {"split": "test", "pairs": check["pairs"],
                                   "auc_real_vs_fake": check["auc_real_vs_fake"]}
    write_json(calibration, run_path(run_dir, "calibration"))
    return calibration


def main(argv=None):
    """CLI: (re)calibrate a finished run; returns the calibration."""
    parser = argparse.ArgumentParser(description="Calibrate the discriminator gate of a run.")
    parser.add_argument("--run", required=True, help="training run folder")
    parser.add_argument("--gamma", type=float, default=DEFAULT_GAMMA,
                        help="DRS target acceptance rate per candidate, in (0, 1]")
    args = parser.parse_args(argv)
    if not 0.0 < args.gamma <= 1.0:
        parser.error(f"--gamma must be in (0, 1], got {args.gamma}")
    try:
        calibration = calibrate_run(load_model(args.run), args.run, args.gamma)
    except (OSError, ValueError) as error:  # RunError is a ValueError
        parser.exit(1, f"calibrate: {error}\n")
    print(f"calibrate: {describe(calibration)}; wrote {run_path(args.run, 'calibration')}")
    return calibration


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "calibrate")


if __name__ == "__main__":
    console_main()
