import os

import numpy as np
import pytest

from adgan.runs.artifacts import load_model, load_vocabulary
from adgan.runs.layout import run_path
from adgan.training.checkpoints import (STATE_FILE, load_training_state, save_training_state,
                                        training_variables)
from adgan.training.config import resolve_config
from conftest import RUN_ARGS
import train


def smoke_gan(run, *flags):
    """A freshly built GAN of `trained_run`'s settings (plus `flags`) with the run's
    vocabulary and exemplar bank's shape."""
    bank = load_model(run).exemplar_bank
    return train.build_gan(resolve_config(RUN_ARGS + list(flags)), load_vocabulary(run),
                           exemplar_shape=(bank.products, bank.slots, bank.key_count))


def test_state_round_trips_exactly_and_leaves_no_temporary(trained_run, tmp_path):
    gan = smoke_gan(trained_run)
    assert load_training_state(gan, run_path(trained_run, "checkpoints")) == 2
    saved = [np.array(v.numpy()) for v in training_variables(gan)]
    save_training_state(gan, str(tmp_path), 7)
    assert os.listdir(tmp_path) == [STATE_FILE]
    for variable in training_variables(gan):
        variable.assign(np.zeros(variable.shape, variable.dtype))
    assert load_training_state(gan, str(tmp_path)) == 7
    for before, variable in zip(saved, training_variables(gan)):
        np.testing.assert_array_equal(before, variable.numpy())


def test_a_state_of_another_configuration_is_refused(trained_run, tmp_path):
    bigger = smoke_gan(trained_run, "--generator-channels", "8")
    with pytest.raises(ValueError, match="has shape"):
        load_training_state(bigger, run_path(trained_run, "checkpoints"))
    assert load_training_state(bigger, str(tmp_path)) == 0  # no state yet: start at epoch 0
