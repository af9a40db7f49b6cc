"""The resumable training state: weights, EMA, optimizer slots, random-number state and
the finished epoch count; and weights carried from one model into another (`--init-from`).

RUN/checkpoints/state.npz is written atomically after every finished epoch
(callbacks.TrainingCheckpoint), so a killed run loses at most one epoch; the one
before it is kept as state.previous.npz, so a damaged latest file (a disk that
filled up, a copy cut short) falls back one epoch instead of losing the run.
"""

import os
import zipfile

import numpy as np

from adgan.helpers import atomic_path, remove_stale_temporaries

STATE_FILE = "state.npz"
PREVIOUS_FILE = "state.previous.npz"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (damaged, or saved by another configuration)."""


class DamagedCheckpoint(CheckpointError):
    """A checkpoint file that cannot be read (cut short, empty, not a checkpoint)."""


# what reading a damaged .npz raises (zip, zlib and pickle errors among them)
READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


def training_variables(gan):
    """Every variable a resume needs, in a fixed order: model, then both optimizers."""
    return list(gan.weights) + list(gan.g_optimizer.variables) + list(gan.d_optimizer.variables)


def random_state_variables(gan):
    """The state of the model's noise and augmentation random streams (Keras SeedGenerators),
    so that a resumed run draws what an uninterrupted one would."""
    return [seed.state for seed in gan.seed_generators()]


def save_training_state(gan, directory, epoch):
    """Write all training variables and the finished epoch count atomically, keeping the
    previous checkpoint as `PREVIOUS_FILE`."""
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory)  # a checkpoint cut short by a kill
    arrays = {f"v{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(training_variables(gan))}
    arrays.update({f"rng{i}": np.asarray(v.numpy())
                   for i, v in enumerate(random_state_variables(gan))})
    latest = os.path.join(directory, STATE_FILE)
    with atomic_path(latest) as tmp:
        np.savez(tmp, epoch=np.int64(epoch), **arrays)
        if os.path.exists(latest):
            os.replace(latest, os.path.join(directory, PREVIOUS_FILE))


def read_state(path, variables, random_variables=()):
    """(epoch, arrays for `variables`, arrays for `random_variables` or None) of a state file,
    read and checked in full before anything is assigned.

    Raises `CheckpointError` naming the file when it is damaged or does not fit.
    """
    try:
        with np.load(path) as state:
            files = set(state.files)
            keys = sorted(k for k in files if k.startswith("v"))
            arrays = [state[k] for k in keys]
            rng_keys = [f"rng{i}" for i in range(len(random_variables))]
            rng = [state[k] for k in rng_keys] if set(rng_keys) <= files else None
            epoch = int(state["epoch"])
    except READ_ERRORS as error:
        raise DamagedCheckpoint(f"{path}: damaged checkpoint ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else 'no detail'})"
                              ) from None
    if len(arrays) != len(variables):
        raise CheckpointError(f"{path}: holds {len(arrays)} variables, the model has "
                              f"{len(variables)}; it was saved by another configuration")
    for array, variable in zip(arrays, variables):
        if tuple(array.shape) != tuple(variable.shape):
            raise CheckpointError(f"{path}: {variable.path} has shape {tuple(variable.shape)}, "
                                  f"the checkpoint {array.shape}")
    return epoch, arrays, rng


def load_training_state(gan, directory, log=print):
    """Restore the state saved by `save_training_state`; returns the epoch (0 if none).

    A damaged latest file falls back to the previous one (saying so through `log`);
    when no file is usable, `CheckpointError` says what to do.
    """
    variables, random_variables = training_variables(gan), random_state_variables(gan)
    candidates = [os.path.join(directory, name) for name in (STATE_FILE, PREVIOUS_FILE)]
    candidates = [path for path in candidates if os.path.exists(path)]
    if not candidates:
        return 0
    problems = []
    for path in candidates:
        try:
            epoch, arrays, rng = read_state(path, variables, random_variables)
        except DamagedCheckpoint as error:  # another configuration's state is raised as is
            problems.append(str(error))
            continue
        if problems:
            log(f"note: {problems[0]}; resuming from the previous one, {path} (epoch {epoch})")
        for array, variable in zip(arrays, variables):
            variable.assign(array)
        for array, variable in zip(rng or [], random_variables):
            variable.assign(array)
        return epoch
    raise CheckpointError(f"{'; '.join(problems)}. No usable checkpoint: delete {directory} to "
                          "train this run from the start, or restore the file from a backup")


def saved_epoch(directory):
    """The epoch count of the latest readable checkpoint in `directory` (0 if none), without
    building a model."""
    for name in (STATE_FILE, PREVIOUS_FILE):
        try:
            with np.load(os.path.join(directory, name)) as state:
                return int(state["epoch"])
        except READ_ERRORS:
            continue
    return 0


def widened(fresh, old):
    """`old` weights embedded in a wider `fresh` array of the same rank (Net2Net-style):
    the old entries in the leading corner, the new kernel rows that read added input
    channels (the second-to-last axis of a kernel) zero, so the layer computes what it did;
    new output channels keep their fresh values and start learning at once."""
    out = np.array(fresh, copy=True)
    if out.ndim >= 2:
        out[..., old.shape[-2]:, :] = 0.0
    out[tuple(slice(0, n) for n in old.shape)] = old
    return out


def parts(network):
    """A network's layers: those of its graph and those it holds as attributes (the
    discriminator's projector, decoders and instance critic, which `.layers` leaves out)."""
    return network._flatten_layers(include_self=False, recursive=False)


def copy_model_weights(source, target):
    """Copy the weights of the `source` GAN into `target`: a whole network where both have
    the same weight shapes in the same order, else layer by layer name (automatic variable
    names differ between processes), where the source has a layer of that name with weights
    of the same shapes, or of no larger shapes (a wider layer: `widened`). Same vocabulary
    required. Returns the names of the target's layers left as they were (layers the source
    lacks, such as newly added ones)."""
    if list(source.vocabulary) != list(target.vocabulary):
        raise CheckpointError("the source model has another vocabulary (train with its text encoder: "
                       "--text-encoder SOURCE)")
    shapes = lambda weights: [tuple(w.shape) for w in weights]  # noqa: E731
    fits = lambda mine, theirs: len(mine) == len(theirs) and all(  # noqa: E731
        len(m) == len(t) and all(a >= b for a, b in zip(m, t)) for m, t in zip(mine, theirs))
    new = []
    theirs_by_name = source.networks()
    for name, mine in target.networks().items():
        theirs = theirs_by_name.get(name)
        if theirs is None:  # a bank only where both condition on instances
            continue
        if shapes(mine.weights) == shapes(theirs.weights):
            mine.set_weights(theirs.get_weights())
            continue
        by_name = {layer.name: layer for layer in parts(theirs)}
        for layer in parts(mine):
            match = by_name.get(layer.name)
            if match is not None and fits(shapes(layer.weights), shapes(match.weights)):
                layer.set_weights([widened(f, o) for f, o in zip(layer.get_weights(),
                                                                  match.get_weights())])
            elif layer.weights:
                new.append(f"{name}/{layer.name}")
    return new
