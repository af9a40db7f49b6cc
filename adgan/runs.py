"""A training run folder: its layout, and everything read back from it.

    RUN/
      config.json            the resolved `TrainConfig` (rebuilds the run)
      data_report.json       rows read, used and skipped, each bad row with file and reason
      vocabulary.txt         the tokenizer's vocabulary, one token a line
      checkpoints/           the resumable training state (checkpoints.py)
      logs/, samples/        TensorBoard logs and sample grids (callbacks.py)
      final/model.keras      the trained model (tokenizer + text encoder + EMA G + D)
      final/vocabulary.txt
      final/calibration.json the discriminator gate's calibration
      text_encoder/          with `--text-encoder auto`: the run's own dual encoder
      upsampler.keras        the learned 4x up-sampler (train_upsampler.py), if trained

The model the repository ships, models/adgan/ (`SHIPPED_RUN`), is such a folder cut down
to what drawing needs (`write_release`): config.json, style_words.json, upsampler.keras and final/ with
the model saved without its optimizer state. Every command that takes `--run` (or
`--model`) draws from it when given neither (`run_or_shipped`).

Every other module asks here for a run's settings (typed, as a `TrainConfig`), its
model, its manifest rows (with the run's group and style filter), its calibration
and gate, its vocabulary and its text encoder. A run without a calibration has one
behaviour everywhere: `load_gate` refuses with a `RunError` that says how to
calibrate it, unless the caller asks for no gate.
"""

import dataclasses
import json
import math
import os
import shutil

import keras
import numpy as np

from adgan.data.styles import VARIED
from adgan.drawing.composition import BundleSplitter
from adgan.drawing.sampling import DEFAULT_GAMMA, Gate, GatedSampler, calibrate
from adgan.helpers import CHECKOUT, atomic_path, write_json
from adgan.text import tokenizer
from adgan.text.encoder import ENCODER_FILE, load_encoder
from adgan.training import baseline  # noqa: F401  (registers BaselineGAN for deserialization)
from adgan.training.config import FIELDS, LEGACY_SETTINGS, TrainConfig, coerce_settings
from adgan.upsampling import upsampler  # noqa: F401  (registers Upsampler for deserialization)
import data_loader
import model  # noqa: F401  (registers TextToImageGAN and its layers)

LAYOUT = {
    "config": "config.json",
    "data_report": "data_report.json",
    "vocabulary": "vocabulary.txt",
    "checkpoints": "checkpoints",
    "logs": "logs",
    "samples": "samples",
    "final": "final",
    "model": os.path.join("final", "model.keras"),
    "final_vocabulary": os.path.join("final", "vocabulary.txt"),
    "calibration": os.path.join("final", "calibration.json"),
    "text_encoder": "text_encoder",
    "style_words": "style_words.json",  # {style: [English, Chinese]} the run was taught
    "upsampler": "upsampler.keras",  # the learned 4x up-sampler (train_upsampler.py), if any
}
EXPORT_INFO_FILE = os.path.join("assets.extra", "adgan.json")  # in an export version folder
SHIPPED_RUN = os.path.join(CHECKOUT, "models", "adgan")
# What a released model keeps of its run besides the model itself (config.json is rewritten)
RELEASE_FILES = ("style_words", "final_vocabulary", "calibration", "upsampler")
MAX_CALIBRATION_PAIRS = 512


class RunError(ValueError):
    """A run folder that cannot be used as asked (a file missing or unreadable, no calibration)."""


def path(run_dir, name):
    """The path of one of a run's files or folders, by its name in `LAYOUT`."""
    return os.path.join(run_dir, LAYOUT[name])


def read_json(file, what):
    """The JSON in `file`; `RunError` naming the file and `what` it should hold otherwise."""
    try:
        with open(file, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise RunError(f"{file} not found ({what})") from None
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise RunError(f"{file}: cannot read {what} ({error})") from None


# ----------------------------------------------------------------------------- settings

def save_config(config, run_dir):
    """Write the run's settings to RUN/config.json (atomically)."""
    write_json(dataclasses.asdict(config), path(run_dir, "config"))


def load_config(run_dir):
    """The run's settings as a `TrainConfig`.

    Settings added after the run was made take the values it was trained with
    (`config.LEGACY_SETTINGS`); any other missing or unknown setting is a `RunError`.
    """
    file = path(run_dir, "config")
    saved = read_json(file, "the run's settings; is this a training run folder?")
    if not isinstance(saved, dict):
        raise RunError(f"{file}: expected a JSON object of settings")
    settings = {**LEGACY_SETTINGS, **saved}
    if isinstance(settings.get("manifest"), str) and not os.path.isabs(settings["manifest"]):
        beside = os.path.join(run_dir, settings["manifest"])  # a release names it from its folder
        if os.path.exists(beside):
            settings["manifest"] = os.path.normpath(beside)
    missing = sorted(set(FIELDS) - set(settings))
    if missing:
        raise RunError(f"{file}: lacks the setting(s) {', '.join(missing)}")
    try:
        return TrainConfig(**coerce_settings(settings))
    except ValueError as error:
        raise RunError(f"{file}: {error}") from None


def row_filter(config):
    """The run's filter of its manifest's rows: the `group` and `style` values it trains on."""
    return {"group": config.groups, "style": config.styles}


def manifest_rows(config, split, caption_columns=None, mark_recolorable=False):
    """(usable rows, data report) of a run's manifest: rows of `split` ("" = all) in the
    run's groups and styles, read and checked by `data_loader.load_examples`.

    caption_columns: defaults to the run's. mark_recolorable: flag the rows of the run's
    colour subgroups (`colors.py`) in the rows' `recolorable` column.
    Raises `data_loader.ManifestError` when no row is usable.
    """
    recolorable = (data_loader.recolor_filter(config.manifest, config.color_subgroups, True)
                   if mark_recolorable else None)
    return data_loader.load_examples(
        config.manifest, config.image_size, config.image_column,
        tuple(caption_columns or config.caption_columns), split or None, row_filter(config),
        recolorable)


def style_words(config):
    """{style: (English, Chinese)} that a run with these settings names in its captions
    ({} with `style_words` off, or a manifest without `styles.csv`)."""
    return data_loader.read_style_words(config.manifest, config.styles) if config.style_words else {}


def load_style_words(run_dir):
    """The style words a trained run was taught ({} for a run trained without)."""
    file = path(run_dir, "style_words")
    if not os.path.exists(file):
        return {}
    return {style: tuple(pair) for style, pair in read_json(file, "the run's style words").items()}


def load_upsampler(run_dir):
    """The run's learned up-sampler (`upsampler.Upsampler`), or None for a run without one
    (its drawings are then enlarged with Lanczos + unsharp mask)."""
    file = path(run_dir, "upsampler")
    if not os.path.exists(file):
        return None
    try:
        return keras.saving.load_model(file)
    except (OSError, ValueError) as error:
        raise RunError(f"{file}: cannot load the up-sampler ({error})") from error


def concept_names(config, columns=2):
    """The names in the first `columns` caption columns of a run's training rows: what it
    can draw (read without decoding the images)."""
    frame = data_loader.read_manifest(config.manifest, config.image_column,
                                      tuple(config.caption_columns[:columns]),
                                      config.split or None, row_filter(config))
    return list(dict.fromkeys(c for captions in frame["captions"] for c in captions))


def load_splitter(run_dir):
    """The run's `composition.BundleSplitter`: the product names and words of every row of
    its manifest (all splits: a held-out product's name is still one product) and its style
    words; None when the manifest cannot be read (bundle prompts are then drawn in one pass)."""
    config = load_config(run_dir)
    try:
        frame = data_loader.read_manifest(config.manifest, config.image_column,
                                          tuple(config.caption_columns))
    except data_loader.ManifestError:
        return None
    names = {c for captions in frame["captions"] for c in captions[:2]}
    words = {w for captions in frame["captions"] for c in captions for w in c.split("|")}
    return BundleSplitter(names, words, load_style_words(run_dir))


# ----------------------------------------------------------------------------- model

def run_or_shipped(run_dir=None):
    """`run_dir`, or the shipped model's folder when none is given (a `RunError` saying
    how to get a model when the checkout has none)."""
    if run_dir:
        return run_dir
    if os.path.exists(path(SHIPPED_RUN, "model")):
        return SHIPPED_RUN
    raise RunError(f"no model given and no shipped model in {SHIPPED_RUN}: train one "
                   "(`python train.py` writes runs/quick) and pass --run runs/quick")


def write_release(run_dir, out_dir):
    """Write the slim copy of a finished, calibrated run that drawing needs to `out_dir`
    (models/adgan for the shipped model); returns `out_dir`.

    The model is loaded and saved again, which drops the optimizer state (about half of
    a training run's model.keras); the manifest is named relative to `out_dir`, so the
    folder works from any checkout. An existing `out_dir` is refused; the folder is
    written under a temporary name and renamed.
    """
    load_calibration(run_dir)  # an uncalibrated run is refused with how to calibrate it
    if os.path.exists(out_dir):
        raise RunError(f"{out_dir} exists: remove it first (a release is never overwritten)")
    settings = dataclasses.asdict(load_config(run_dir))
    settings["manifest"] = os.path.relpath(settings["manifest"], os.path.abspath(out_dir))
    gan = load_model(run_dir)
    os.makedirs(os.path.dirname(os.path.abspath(out_dir)), exist_ok=True)
    with atomic_path(out_dir) as tmp:
        os.makedirs(path(tmp, "final"))
        for name in RELEASE_FILES:
            if os.path.exists(path(run_dir, name)):
                shutil.copy(path(run_dir, name), path(tmp, name))
        write_json(settings, path(tmp, "config"))
        gan.save(path(tmp, "model"))
    return out_dir


def load_model(run_dir):
    """The run's final `TextToImageGAN` (or `BaselineGAN`)."""
    file = path(run_dir, "model")
    if not os.path.exists(file):
        raise RunError(f"{file} not found: is {run_dir} a finished training run?")
    try:
        return keras.saving.load_model(file)
    except Exception as error:  # a damaged zip raises zipfile, h5py or Keras errors alike
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise RunError(f"{file}: damaged or not a Keras model file ({detail}); copy it again "
                       "or finish the run again with `python train.py` (it resumes from its "
                       "checkpoint)") from None


def load_vocabulary(run_dir):
    """The final model's vocabulary (without loading the model)."""
    return tokenizer.load_vocabulary(path(run_dir, "final_vocabulary"))


def load_text_encoder(run_dir, encoder_dir=None):
    """A dual encoder (encoder.py): `encoder_dir`, else the run's own (RUN/text_encoder,
    made by `--text-encoder auto`), else None."""
    if encoder_dir:
        return load_encoder(encoder_dir)
    folder = path(run_dir, "text_encoder")
    return load_encoder(folder) if os.path.exists(os.path.join(folder, ENCODER_FILE)) else None


# ----------------------------------------------------------------------------- the gate

def load_calibration(run_dir):
    """The run's gate calibration; a `RunError` saying how to make one if it has none."""
    file = path(run_dir, "calibration")
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
    if not gated and not os.path.exists(path(run_dir, "calibration")):
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
        raise RunError(f"{path(run_dir, 'calibration')}: not a gate calibration "
                       f"({type(error).__name__}: {error}); recalibrate with "
                       f"`adgan-calibrate --run {run_dir}`") from None


def calibration_pairs(config, vectorizer, split, seed=0):
    """(texts, uint8 images [N, S, S, 3]) of a run's manifest rows in `split`, or None if none.

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
    texts = [caption for caption, _ in pairs]
    if config.bundle_share and split == config.split:
        source = data_loader.bundle_source(frame, config.image_size, style_words(config), seed)
        made = [source(k) for k in range(int(round(len(pairs) * config.bundle_share)))]
        texts += [caption.decode("utf-8") for _, caption, *_ in made]
        images = np.concatenate([images, np.stack([picture for picture, *_ in made])])
    return texts, images


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
    write_json(calibration, path(run_dir, "calibration"))
    return calibration


# ----------------------------------------------------------------------------- exports

def export_info_path(version_dir):
    """Where an export version records its run, gate and calibration."""
    return os.path.join(version_dir, EXPORT_INFO_FILE)


def read_export_info(version_dir):
    """The record an export version keeps of its run and gate (None if it has none)."""
    file = export_info_path(version_dir)
    return read_json(file, "the export's record") if os.path.exists(file) else None


def run_name(run_dir):
    """A run's label in a report: its folder's name."""
    return os.path.basename(os.path.normpath(run_dir))


def run_sampler(gan, run_dir, samplers, gated=True, style=VARIED, compose=False):
    """A loaded run's `GatedSampler` from `samplers` ({(run, compose): sampler}), or made and
    put there: gated unless `gated` is False, styles varied with "varied", bundles composed."""
    if (run_dir, compose) not in samplers:
        samplers[run_dir, compose] = GatedSampler(
            gan, load_gate(run_dir, gated=gated),
            style_words=load_style_words(run_dir) if style == VARIED else {},
            splitter=load_splitter(run_dir) if compose else None)
    return samplers[run_dir, compose]
