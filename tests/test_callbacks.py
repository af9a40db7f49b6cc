import os

import numpy as np
from PIL import Image

from adgan.runs.layout import run_path
from adgan.training.callbacks import StopOnNonFinite, TrainingCheckpoint


def test_non_finite_loss_stops_without_overwriting_the_checkpoint(tmp_path):
    class FakeModel:
        stop_training = False

    guard = StopOnNonFinite()
    checkpoint = TrainingCheckpoint(str(tmp_path), guard)
    guard.set_model(FakeModel())
    guard.on_epoch_begin(4)
    guard.on_train_batch_end(0, {"d_loss": 1.0, "g_loss": 0.5})
    assert guard.error is None
    guard.on_train_batch_end(1, {"d_loss": float("nan"), "g_loss": 0.5})
    assert guard.model.stop_training and "non-finite d_loss at epoch 5, batch 2" in guard.error
    checkpoint.on_epoch_end(4)  # would crash on FakeModel if it tried to save
    assert not os.listdir(tmp_path)


def test_sample_grids_have_one_row_per_prompt(trained_run):
    samples = run_path(trained_run, "samples")
    # the smoke preset: 2 prompts x 2 samples of 16 pixels, 2-pixel padding
    grid = np.asarray(Image.open(os.path.join(samples, "epoch_0002.png")))
    assert grid.shape == (2 * 18 + 2, 2 * 18 + 2, 3)
