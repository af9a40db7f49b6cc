"""`Run`: a training run or release opened once, for drawing.

Every command that draws (generate.py, export.py, the ad layer's sources and studio,
evaluate.py and the judge) takes one `Run` instead of loading a model, gate, style
words, up-sampler and splitter from a folder one by one. Each part is read at its first
use and kept, so a command that needs only the settings never loads the model.
"""

import functools
import os

from adgan.data.styles import VARIED
from adgan.drawing.calibrate import load_calibration, load_gate
from adgan.drawing.sampling import GatedSampler
from adgan.runs.artifacts import (load_model, load_reader, load_splitter, load_style_words,
                                  load_upsampler)
from adgan.runs.layout import load_config, run_or_shipped
from adgan.text.tokenizer import EMPTY_PROMPT, PromptError, check_prompts
from adgan.text.understanding import describe_refusal, reading_notes


class Run:
    """A run folder or release (the shipped model, models/adgan, when `folder` is None).

    Args:
        folder: the run or release folder; None = the shipped model.
        gated: False draws without the gate (an uncalibrated run is then usable: each
            seed's first candidate is kept); True needs the run's calibration.
        gamma, min_score: the gate's DRS target rate or fixed threshold instead of the
            calibrated rate (`Gate.from_calibration`).
        read: read prompts as shops write them (`reader`); False draws them as written
            (as before prompt understanding; for measuring it).

    Every part is loaded at first use; an unusable file is a `RunError` naming it.
    """

    def __init__(self, folder=None, gated=True, gamma=None, min_score=None, read=True):
        self.folder = run_or_shipped(folder)
        self.gated = gated
        self.gamma = gamma
        self.min_score = min_score
        self.read = read
        self._samplers = {}

    @property
    def name(self):
        """The run's label in a report: its folder's name (and "as written" when it does not
        read prompts)."""
        name = os.path.basename(os.path.normpath(self.folder))
        return name if self.read else f"{name} as written"

    @functools.cached_property
    def config(self):
        """The run's settings (`TrainConfig`)."""
        return load_config(self.folder)

    @functools.cached_property
    def model(self):
        """The final `TextToImageGAN` (or `BaselineGAN`)."""
        return load_model(self.folder)

    @functools.cached_property
    def calibration(self):
        """The gate's calibration (a `RunError` saying how to make one if there is none)."""
        return load_calibration(self.folder)

    @functools.cached_property
    def gate(self):
        """The `Gate` the run was opened with (`calibrate.load_gate`)."""
        return load_gate(self.folder, self.gamma, self.min_score, self.gated)

    @functools.cached_property
    def style_words(self):
        """{style: (English, Chinese)} the run was taught ({} for a run trained without)."""
        return load_style_words(self.folder)

    @functools.cached_property
    def upsampler(self):
        """The learned up-sampler, or None (drawings are enlarged with Lanczos)."""
        return load_upsampler(self.folder)

    @functools.cached_property
    def splitter(self):
        """The `BundleSplitter` of its manifest, or None when the manifest cannot be read."""
        return load_splitter(self.folder)

    @functools.cached_property
    def reader(self):
        """The `understanding.PromptReader` of its catalogue, or None when the manifest
        cannot be read or the run was opened with `read=False` (prompts are then drawn as
        written)."""
        return load_reader(self.folder, self.model.vocabulary) if self.read else None

    def prompt_problems(self, prompts):
        """[(warnings, the reason it cannot be drawn or None)] for each prompt, read in one
        call: empty, naming no product (`reader`), or with no token the model knows (the
        text drawn is what `tokenizer.check_prompts` checks; a prompt over the reader's
        length is noted)."""
        prompts = list(prompts)
        readings = (self.reader.read(prompts) if self.reader is not None and prompts
                    else [None] * len(prompts))
        found = []
        for prompt, reading in zip(prompts, readings):
            try:
                if reading is None:
                    notes = check_prompts([prompt], self.model.vectorizer,
                                          self.model.sequence_length)
                elif not reading["drawable"]:
                    raise PromptError(describe_refusal(prompt, reading) if prompt.strip()
                                      else EMPTY_PROMPT)
                else:
                    check_prompts([reading["text"]], self.model.vectorizer,
                                  self.model.sequence_length)
                    notes = reading_notes(prompt, reading)
                found.append((notes, None))
            except PromptError as error:
                found.append(([], str(error)))
        return found

    def check_prompts(self, prompts):
        """Warnings for the prompts this run draws (`prompt_problems`); `PromptError` for the
        first it cannot draw."""
        warnings = []
        for notes, problem in self.prompt_problems(prompts):
            if problem:
                raise PromptError(problem)
            warnings += notes
        return warnings

    def sampler(self, style=VARIED, compose=True):
        """The run's `GatedSampler` (made once for each (style, compose) and kept: each
        traces its graph once). style: "varied" draws a prompt naming no style in the
        style its seed picks, as the SavedModel does; anything else draws prompts as
        given. compose: draw bundle prompts product by product (when the manifest is
        readable), else in one pass."""
        varied = style == VARIED
        if (varied, compose) not in self._samplers:
            self._samplers[varied, compose] = GatedSampler(
                self.model, self.gate, style_words=self.style_words if varied else {},
                splitter=self.splitter if compose else None, upsampler=self.upsampler,
                reader=self.reader)
        return self._samplers[varied, compose]
