"""What a finished run becomes: the slim release copy drawing needs (models/adgan is the
shipped one), and the record a TF Serving export keeps of its run and gate."""

import dataclasses
import os
import shutil

from adgan.drawing.calibrate import load_calibration
from adgan.helpers import atomic_path, write_json
from adgan.runs.artifacts import load_model, load_style_words
from adgan.runs.layout import RunError, load_config, read_json, run_path
from adgan.runs.rows import manifest_rows
from adgan.training import exemplars

# What a released model keeps of its run besides the model itself (config.json is rewritten)
RELEASE_FILES = ("style_words", "final_vocabulary", "calibration", "upsampler")
EXPORT_INFO_FILE = os.path.join("assets.extra", "adgan.json")  # in an export version folder


CATALOGUES = ("trained", "all")  # the release's exemplar bank: the run's own, or every split


def write_release(run_dir, out_dir, catalogue="trained"):
    """Write the slim copy of a finished, calibrated run that drawing needs to `out_dir`
    (models/adgan for the shipped model); returns `out_dir`.

    The model is loaded and saved again, which drops the optimizer state (about half of
    a training run's model.keras); the manifest is named relative to `out_dir`, so the
    folder works from any checkout. An existing `out_dir` is refused; the folder is
    written under a temporary name and renamed. `catalogue`: the instance-conditioned
    model's bank of drawings, "trained" (the run's training rows) or "all" (every row of
    its manifest in its groups and styles, held-out splits too: products the generator
    never trained on, drawn around their own drawings).
    """
    load_calibration(run_dir)  # an uncalibrated run is refused with how to calibrate it
    if os.path.exists(out_dir):
        raise RunError(f"{out_dir} exists: remove it first (a release is never overwritten)")
    if catalogue not in CATALOGUES:
        raise ValueError(f"catalogue must be one of {', '.join(CATALOGUES)}, got {catalogue!r}")
    config = load_config(run_dir)
    settings = dataclasses.asdict(config)
    settings["manifest"] = os.path.relpath(settings["manifest"], os.path.abspath(out_dir))
    gan = load_model(run_dir)
    if catalogue == "all":
        if not getattr(gan, "exemplar_size", 0):
            raise ValueError(f"{run_dir} has no exemplar bank (instance conditioning) to fill")
        examples, _ = manifest_rows(config, "")
        gan = exemplars.with_catalogue(gan, exemplars.build_catalogue(
            examples, load_style_words(run_dir), gan.vectorizer, gan.exemplar_size))
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
