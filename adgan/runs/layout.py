"""A run folder's files, its settings (config.json, typed as a `TrainConfig`) and the
shipped release, models/adgan, that every command draws from when given no run."""

import dataclasses
import json
import os

from adgan.helpers import CHECKOUT, write_json
from adgan.training.config import FIELDS, LEGACY_SETTINGS, TrainConfig, coerce_settings

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
SHIPPED_RUN = os.path.join(CHECKOUT, "models", "adgan")


class RunError(ValueError):
    """A run folder that cannot be used as asked (a file missing or unreadable, no calibration)."""


def run_path(run_dir, name):
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


def run_or_shipped(run_dir=None):
    """`run_dir`, or the shipped model's folder when none is given (a `RunError` saying
    how to get a model when the checkout has none)."""
    if run_dir:
        return run_dir
    if os.path.exists(run_path(SHIPPED_RUN, "model")):
        return SHIPPED_RUN
    raise RunError(f"no model given and no shipped model in {SHIPPED_RUN}: train one "
                   "(`python train.py` writes runs/quick) and pass --run runs/quick")


def save_config(config, run_dir):
    """Write the run's settings to RUN/config.json (atomically)."""
    write_json(dataclasses.asdict(config), run_path(run_dir, "config"))


def load_config(run_dir):
    """The run's settings as a `TrainConfig`.

    Settings added after the run was made take the values it was trained with
    (`config.LEGACY_SETTINGS`); any other missing or unknown setting is a `RunError`.
    """
    file = run_path(run_dir, "config")
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
