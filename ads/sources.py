"""Where product images come from: an exported SavedModel or a training run, one interface.

Each has `image_size` (the model's, N), `sizes` (what `generate` can return: N, 2N, 4N)
and `upsampler` ("learned" or "lanczos": how 2N and 4N are made, upsampler.py).

Both give the same image for the same (prompt, seed, num_candidates): the
SavedModel's `generate` and `sampling.GatedSampler` draw candidates keyed by
(seed, k) and gate them alike (tested in tests/test_export.py).
"""

import os
import re

import tensorflow as tf

from adgan.drawing.sampling import judge_score, judged_texts
from adgan.helpers import decoded
from adgan.runs.layout import RunError
from adgan.runs.release import read_export_info
from adgan.runs.run import Run
from adgan.text.tokenizer import PromptError
from adgan.upsampling.upsampler import output_sizes
from data_loader import to_float_tensor


class SourceError(ValueError):
    """A model that cannot be loaded, or a prompt it cannot draw."""


def assertion_message(error):
    """The readable part of a SavedModel's InvalidArgumentError (its assertion's text)."""
    found = re.search(r"assertion failed: (.*)", error.message)
    text = found.group(1) if found else error.message.strip().splitlines()[-1]
    return re.sub(r"\] \[", " ", text).strip("[] ")


class SavedModelSource:
    """Gated generation through an exported SavedModel version folder (export.py)."""

    def __init__(self, path):
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise SourceError(f"{path} is not an exported SavedModel version folder "
                              "(no saved_model.pb; make one with export.py)")
        self.path = os.path.abspath(path)
        self.model = tf.saved_model.load(path)
        info = read_export_info(path) or {}
        self.image_size = info.get("image_size") or int(
            self.model.generate.concrete_functions[0].structured_outputs["images"].shape[1])
        self.sizes = tuple(info.get("sizes", [self.image_size]))  # older exports: one size
        self.upsampler = info.get("upsampler")

    def generate(self, prompts, seeds, num_candidates=8, size=None):
        """numpy {"images" uint8 [B, size, size, 3], "score", "accepted", "tries", and what
        was read of each prompt: "drawn_as", "ignored" (exports that read prompts)} for the
        prompts (`size` one of `sizes`, default the largest)."""
        request = [tf.constant(list(prompts)), tf.constant(list(seeds), tf.int64),
                   tf.constant([num_candidates], tf.int64)]
        try:
            out = (self.model.generate_at_size(*request, tf.constant([size or self.sizes[-1]],
                                                                     tf.int64))
                   if len(self.sizes) > 1 else self.model.generate(*request))
        except tf.errors.InvalidArgumentError as error:
            raise SourceError(assertion_message(error)) from None
        found = {name: out[name].numpy() for name in ("images", "score", "accepted", "tries")}
        for name in ("drawn_as", "ignored"):  # what was read (exports since prompt reading)
            if name in out:
                found[name] = decoded(out[name])
        return found

    def score(self, prompts, images):
        """The gate's score in [0, 1] of uint8 images [B, S, S, 3] against their prompts."""
        try:
            out = self.model.signatures["score"](text=tf.constant(list(prompts)),
                                                 images=tf.constant(images, tf.uint8))
        except tf.errors.InvalidArgumentError as error:
            raise SourceError(assertion_message(error)) from None
        return out["score"].numpy()

    def describe(self):
        return {"model": self.path, "image_size": self.image_size, "upsampler": self.upsampler}


class RunSource:
    """Gated generation straight from an opened training run or release (`Run`; no export
    needed).

    The run must be calibrated (`adgan-calibrate --run RUN`) unless it was opened with
    `gated=False`, which keeps each seed's first candidate.
    """

    def __init__(self, run):
        try:
            # a prompt naming no style is drawn in the style its seed picks, and a bundle
            # product by product, as the SavedModel does
            self.sampler = run.sampler()
        except RunError as error:
            raise SourceError(str(error)) from None
        self.run = run
        self.gan = run.model
        self.gated = run.gated
        self.run_dir = os.path.abspath(run.folder)
        self.image_size = self.gan.image_size
        self.sizes = output_sizes(self.image_size)
        self.upsampler = "learned" if run.upsampler is not None else "lanczos"

    def generate(self, prompts, seeds, num_candidates=8, size=None):
        """numpy {"images" uint8 [B, size, size, 3], "score", "accepted", "tries"} for the
        prompts (`size` one of `sizes`, default the largest)."""
        size = size or self.sizes[-1]
        if size not in self.sizes:
            raise SourceError(f"size must be one of {', '.join(map(str, self.sizes))}, "
                              f"got {size}")
        try:
            self.run.check_prompts(prompts)
        except PromptError as error:
            raise SourceError(str(error)) from None
        budget = num_candidates if self.gated else 1
        return self.sampler(prompts, seeds, [budget] * len(prompts), size)

    def score(self, prompts, images):
        """The gate's score in [0, 1] of uint8 images [B, S, S, 3] against their prompts."""
        token_ids = self.gan.vectorizer(judged_texts(self.run.reader, tf.constant(list(prompts))))
        return judge_score(self.gan, token_ids, to_float_tensor(images), self.run.gate).numpy()

    def describe(self):
        return {"run": self.run_dir, "image_size": self.image_size, "upsampler": self.upsampler}


def load_source(model=None, run=None, gated=True):
    """A `SavedModelSource` for `model`, else a `RunSource` for `run` (a folder or an opened
    `Run`), else for the shipped model (models/adgan)."""
    if model:
        return SavedModelSource(model)
    try:
        return RunSource(run if isinstance(run, Run) else Run(run, gated=gated))
    except RunError as error:
        raise SourceError(str(error)) from None
