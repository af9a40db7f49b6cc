"""Where product images come from: an exported SavedModel or a training run, one interface.

Both give the same image for the same (prompt, seed, num_candidates): the
SavedModel's `generate` and `GatedSampler` draw candidates keyed by (seed, k) and
gate them alike (tested in tests/test_export.py).
"""

import os

import numpy as np


class SourceError(ValueError):
    """A model that cannot be loaded, or a prompt it cannot draw."""


def assertion_message(error):
    """The readable part of a SavedModel's InvalidArgumentError (its assertion's text)."""
    import re

    found = re.search(r"assertion failed: (.*)", error.message)
    text = found.group(1) if found else error.message.strip().splitlines()[-1]
    return re.sub(r"\] \[", " ", text).strip("[] ")


class SavedModelSource:
    """Gated generation through an exported SavedModel version folder (export.py)."""

    def __init__(self, path):
        import tensorflow as tf

        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise SourceError(f"{path} is not an exported SavedModel version folder "
                              "(no saved_model.pb; make one with export.py)")
        self.path = os.path.abspath(path)
        self.model = tf.saved_model.load(path)

    def generate(self, prompts, seeds, num_candidates=8):
        """numpy {"images" uint8 [B, S, S, 3], "score", "accepted", "tries"} for the prompts."""
        import tensorflow as tf

        try:
            out = self.model.generate(tf.constant(list(prompts)),
                                      tf.constant(list(seeds), tf.int64),
                                      tf.constant([num_candidates], tf.int64))
        except tf.errors.InvalidArgumentError as error:
            raise SourceError(assertion_message(error)) from None
        return {name: out[name].numpy() for name in ("images", "score", "accepted", "tries")}

    def score(self, prompts, images):
        """The gate's score [B] of uint8 images [B, S, S, 3] against their prompts."""
        import tensorflow as tf

        try:
            out = self.model.signatures["score"](text=tf.constant(list(prompts)),
                                                 images=tf.constant(images, tf.uint8))
        except tf.errors.InvalidArgumentError as error:
            raise SourceError(assertion_message(error)) from None
        return out["score"].numpy()

    @property
    def image_size(self):
        return int(self.model.generate.concrete_functions[0].structured_outputs["images"]
                   .shape[1])

    def describe(self):
        return {"model": self.path}


class RunSource:
    """Gated generation straight from a training run folder (no export needed)."""

    def __init__(self, run_dir):
        import gate as gating
        from generate import load_run

        try:
            self.gan = load_run(run_dir)
        except (FileNotFoundError, OSError, ValueError) as error:
            raise SourceError(str(error)) from None
        calibration = gating.load_calibration(run_dir)
        self.gate = (gating.Gate.from_calibration(calibration) if calibration
                     else gating.Gate(slope=1.0, intercept=0.0, max_log_odds=0.0, shift=0.0))
        self.sampler = gating.GatedSampler(self.gan, self.gate)
        self.run_dir = os.path.abspath(run_dir)

    def generate(self, prompts, seeds, num_candidates=8):
        from generate import PromptError, check_prompts

        try:
            check_prompts(self.gan, prompts)
        except PromptError as error:
            raise SourceError(str(error)) from None
        return self.sampler(prompts, seeds, [num_candidates] * len(prompts))

    def score(self, prompts, images):
        import tensorflow as tf

        import gate as gating

        floats = tf.constant(np.asarray(images, np.float32) / 127.5 - 1.0)
        return gating.judge_score(self.gan, self.gan.vectorizer(tf.constant(list(prompts))),
                                  floats, self.gate).numpy()

    @property
    def image_size(self):
        return self.gan.image_size

    def describe(self):
        return {"run": self.run_dir}


def load_source(model=None, run=None):
    """A `SavedModelSource` for `model`, else a `RunSource` for `run`."""
    if model:
        return SavedModelSource(model)
    if run:
        return RunSource(run)
    raise SourceError("give --model EXPORT/VERSION (an exported SavedModel) or --run RUN")
