"""Training callbacks: stop at a non-finite loss, checkpoint every epoch, draw sample grids."""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from adgan.helpers import make_grid, save_png, to_uint8, write_json
from adgan.training.checkpoints import save_training_state


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop training at the first non-finite loss and remember why in `error`."""

    def __init__(self):
        super().__init__()
        self.error = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = [k for k, v in (logs or {}).items() if not math.isfinite(float(v))]
        if bad and self.error is None:
            self.error = (f"non-finite {', '.join(bad)} at epoch {self.epoch + 1}, "
                          f"batch {batch + 1}; training stopped")
            self.model.stop_training = True


class TrainingCheckpoint(keras.callbacks.Callback):
    """Save the full training state after every epoch whose losses stayed finite.

    Args:
        directory: checkpoint folder.
        guard: the run's `StopOnNonFinite`; no checkpoint is written once it fired.
    """

    def __init__(self, directory, guard):
        super().__init__()
        self.directory = directory
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.error is None:
            save_training_state(self.model, self.directory, epoch + 1)


class SampleGrid(keras.callbacks.Callback):
    """Draw a fixed grid (one row a prompt, fixed noise) from the EMA generator.

    Writes `directory/epoch_NNNN.png` and an image summary to `log_dir`; nothing
    once `guard` (the run's `StopOnNonFinite`) has fired.
    """

    def __init__(self, directory, prompts, per_prompt, every, seed, log_dir, guard):
        super().__init__()
        self.directory = directory
        self.prompts = list(prompts)
        self.per_prompt = per_prompt
        self.every = every
        self.seed = seed
        self.log_dir = log_dir
        self.guard = guard
        self.writer = None

    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        write_json(self.prompts, os.path.join(self.directory, "prompts.json"))
        self.writer = tf.summary.create_file_writer(self.log_dir)
        # Fixed noise: the same latent per column at every epoch.
        generator = np.random.default_rng(self.seed)
        noise = generator.standard_normal((self.per_prompt, self.model.noise_dim))
        self.noise = np.tile(noise, (len(self.prompts), 1)).astype(np.float32)
        self.texts = [p for p in self.prompts for _ in range(self.per_prompt)]

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every or self.guard.error is not None:
            return
        images = to_uint8(self.model.generate(self.texts, noise=self.noise))
        grid = make_grid(images, rows=len(self.prompts))
        save_png(grid, os.path.join(self.directory, f"epoch_{epoch + 1:04d}.png"))
        with self.writer.as_default():
            tf.summary.image("samples", grid[None], step=epoch + 1)
        self.writer.flush()
