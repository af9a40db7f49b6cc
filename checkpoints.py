"""The resumable training state: weights, EMA, optimizer slots and the finished epoch count.

One file, RUN/checkpoints/state.npz, written atomically after every finished
epoch (callbacks.TrainingCheckpoint), so a killed run loses at most one epoch.
"""

import os

import numpy as np

from helpers import atomic_path

STATE_FILE = "state.npz"


def training_variables(gan):
    """Every variable a resume needs, in a fixed order: model, then both optimizers."""
    return list(gan.weights) + list(gan.g_optimizer.variables) + list(gan.d_optimizer.variables)


def save_training_state(gan, directory, epoch):
    """Write all training variables and the finished epoch count atomically."""
    os.makedirs(directory, exist_ok=True)
    arrays = {f"v{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(training_variables(gan))}
    with atomic_path(os.path.join(directory, STATE_FILE)) as tmp:
        np.savez(tmp, epoch=np.int64(epoch), **arrays)


def load_training_state(gan, directory):
    """Restore the state saved by `save_training_state`; returns the epoch (0 if none)."""
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return 0
    variables = training_variables(gan)
    with np.load(path) as state:
        keys = sorted(k for k in state.files if k.startswith("v"))
        if len(keys) != len(variables):
            raise ValueError(f"{path}: holds {len(keys)} variables, the model has "
                             f"{len(variables)}; it was saved by another configuration")
        for key, variable in zip(keys, variables):
            if tuple(state[key].shape) != tuple(variable.shape):
                raise ValueError(f"{path}: {variable.path} has shape {tuple(variable.shape)}, "
                                 f"the checkpoint {state[key].shape}")
            variable.assign(state[key])
        return int(state["epoch"])
