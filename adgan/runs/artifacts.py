"""Loading what training wrote into a run folder: the final model, its vocabulary, its
text encoder (to start another run from), the run's own dual encoder, the style words it
was taught, its up-sampler, and the bundle splitter and prompt reader made from its
manifest. Each is a
`RunError` naming the file when unusable."""

import dataclasses
import os

import keras

from adgan.drawing.composition import BundleSplitter
from adgan.runs.layout import RunError, load_config, read_json, run_path
from adgan.runs.rows import row_filter
from adgan.text import lexicon, tokenizer, understanding
from adgan.text.encoder import ENCODER_FILE, load_encoder
from adgan.training import baseline  # noqa: F401  (registers BaselineGAN for deserialization)
from adgan.training.exemplars import ignored_words
from adgan.upsampling import upsampler  # noqa: F401  (registers Upsampler for deserialization)
import data_loader
import model  # noqa: F401  (registers TextToImageGAN and its layers)


def load_model(run_dir):
    """The run's final `TextToImageGAN` (or `BaselineGAN`). A model saved before
    `exemplar_ignored_words` existed is given its run's colour and style words."""
    file = run_path(run_dir, "model")
    if not os.path.exists(file):
        raise RunError(f"{file} not found: is {run_dir} a finished training run?")
    try:
        gan = keras.saving.load_model(file)
    except Exception as error:  # a damaged zip raises zipfile, h5py or Keras errors alike
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise RunError(f"{file}: damaged or not a Keras model file ({detail}); copy it again "
                       "or finish the run again with `python train.py` (it resumes from its "
                       "checkpoint)") from None
    if gan.exemplar_size and gan.exemplar_ignored_words is None:
        # saved before retrieval learnt to skip style words: they are the run's own
        gan.exemplar_ignored_words = ignored_words(load_style_words(run_dir))
    return gan


def load_vocabulary(run_dir):
    """The final model's vocabulary (without loading the model)."""
    return tokenizer.load_vocabulary(run_path(run_dir, "final_vocabulary"))


def load_text_encoder(run_dir, encoder_dir=None):
    """A dual encoder (encoder.py): `encoder_dir`, else the run's own (RUN/text_encoder,
    made by `--text-encoder auto`), else None."""
    if encoder_dir:
        return load_encoder(encoder_dir)
    folder = run_path(run_dir, "text_encoder")
    return load_encoder(folder) if os.path.exists(os.path.join(folder, ENCODER_FILE)) else None


@dataclasses.dataclass(frozen=True)
class RunTextEncoder:
    """The text encoder of a trained GAN (a run or release folder), with the attributes of a
    dual encoder that train.py's `load_pretrained_text_encoder` and `use_pretrained` read."""

    text_encoder: keras.Model
    vocabulary: list
    sequence_length: int
    embedding_dim: int
    text_hidden_units: int


def load_run_text_encoder(run_dir):
    """The final model's text encoder and vocabulary of a run (or release) folder."""
    saved = load_config(run_dir)
    return RunTextEncoder(load_model(run_dir).text_encoder, load_vocabulary(run_dir),
                          saved.sequence_length, saved.embedding_dim, saved.text_hidden_units)


def load_style_words(run_dir):
    """The style words a trained run was taught ({} for a run trained without)."""
    file = run_path(run_dir, "style_words")
    if not os.path.exists(file):
        return {}
    return {style: tuple(pair) for style, pair in read_json(file, "the run's style words").items()}


def load_upsampler(run_dir):
    """The run's learned up-sampler (`upsampler.Upsampler`), or None for a run without one
    (its drawings are then enlarged with Lanczos + unsharp mask)."""
    file = run_path(run_dir, "upsampler")
    if not os.path.exists(file):
        return None
    try:
        return keras.saving.load_model(file)
    except (OSError, ValueError) as error:
        raise RunError(f"{file}: cannot load the up-sampler ({error})") from error


def load_reader(run_dir, vocabulary):
    """The run's `understanding.PromptReader`: a lexicon of every product of its manifest in
    its groups (all splits: the catalogue a release's bank holds), the shop synonym table
    and shop words (data/shop/), its style words, the drawn names chosen from the model's
    `vocabulary`; None when the manifest cannot be read."""
    config = load_config(run_dir)
    try:
        frame = data_loader.read_manifest(config.manifest, config.image_column,
                                          tuple(config.caption_columns), None,
                                          row_filter(config))
    except data_loader.ManifestError:
        return None
    products = lexicon.catalogue_products(frame, vocabulary)
    return understanding.PromptReader(lexicon.build_lexicon(
        products, lexicon.read_synonyms(), lexicon.read_shop_words(), load_style_words(run_dir),
        lexicon.read_heads()))


def load_splitter(run_dir):
    """The run's `composition.BundleSplitter`: the product names and words of every row of
    its manifest (all splits: a held-out product's name is still one product) and its style
    words; None when the manifest cannot be read (bundle prompts are then drawn in one pass)."""
    config = load_config(run_dir)
    try:
        frame = data_loader.read_manifest(config.manifest, config.image_column,
                                          tuple(config.caption_columns))
    except data_loader.ManifestError:
        return None
    names = {c for captions in frame["captions"] for c in captions[:2]}
    words = {w for captions in frame["captions"] for c in captions for w in c.split("|")}
    return BundleSplitter(names, words, load_style_words(run_dir))
