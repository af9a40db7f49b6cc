"""What a finished run becomes: the slim release copy drawing needs (models/adgan is the
shipped one), and the record a TF Serving export keeps of its run and gate."""

import dataclasses
import os
import shutil

from adgan.drawing.calibrate import load_calibration
from adgan.helpers import atomic_path, write_json
from adgan.runs.artifacts import load_model
from adgan.runs.layout import RunError, load_config, read_json, run_path

# What a released model keeps of its run besides the model itself (config.json is rewritten)
RELEASE_FILES = ("style_words", "final_vocabulary", "calibration", "upsampler")
EXPORT_INFO_FILE = os.path.join("assets.extra", "adgan.json")  # in an export version folder


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
        os.makedirs(run_path(tmp, "final"))
        for name in RELEASE_FILES:
            if os.path.exists(run_path(run_dir, name)):
                shutil.copy(run_path(run_dir, name), run_path(tmp, name))
        write_json(settings, run_path(tmp, "config"))
        gan.save(run_path(tmp, "model"))
    return out_dir


def export_info_path(version_dir):
    """Where an export version records its run, gate and calibration."""
    return os.path.join(version_dir, EXPORT_INFO_FILE)


def read_export_info(version_dir):
    """The record an export version keeps of its run and gate (None if it has none)."""
    file = export_info_path(version_dir)
    return read_json(file, "the export's record") if os.path.exists(file) else None
