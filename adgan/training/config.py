"""The settings of a training run: `TrainConfig`, its presets, and the parser made from it.

One source of truth: every field is a `train.py` flag (`image_size` -> `--image-size`,
booleans `--x` / `--no-x`, lists comma-separated), a key of `--config file.json`,
and a key of the run folder's config.json (which `adgan.runs.layout.load_config` reads back
into a `TrainConfig`). Precedence is preset -> `--config file.json` -> the flags
actually typed; unknown or ill-typed settings are errors.
"""

import argparse
import dataclasses
import json

from adgan.data import colors
from adgan.helpers import add_dataclass_flags, split_list
import data_loader


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (the defaults are the `quick` preset)."""

    recipe: str = "dfgan"  # dfgan (ours) | baseline (keras.io conditional GAN, for comparison)
    manifest: str = data_loader.DEFAULT_MANIFEST
    image_column: str = "image"
    caption_columns: tuple = data_loader.DEFAULT_CAPTION_COLUMNS
    split: str = "train"  # rows of the manifest's `split` column to train on; "" = all
    groups: tuple = ("Food & Drink", "Objects")  # rows of its `group` column; () = all
    styles: tuple = ()  # rows of its `style` column (noto, fluent-3d, ...); () = all
    # Name the drawing style in about half of the captions ("3d handbag", "立体 手提包"), with
    # the words of `styles.csv` beside the manifest (styles.py), so prompts can ask for a look.
    style_words: bool = True
    # Start from a pretrained text encoder (a dual encoder, encoder.py) and keep it fixed,
    # as DF-GAN does: seen-prompt R-precision 0.24 -> 0.41, FID 25.7 -> 21.0 (docs/evaluation.md).
    # "auto" first trains the run's own (RUN/text_encoder) on all training rows of the
    # manifest (every group: one trained on the run's groups alone did not help), unless the
    # shipped model's text encoder is that very encoder (train.auto_text_encoder); a run or
    # release folder = its final model's text encoder; "" = none.
    text_encoder: str = "auto"
    freeze_text_encoder: bool = True  # (only with a text encoder)
    # for "auto": 30 passes over the 8,465 training rows of the eight-style set take the
    # steps that 100 passes over the two-style set did
    text_encoder_epochs: int = 30
    # Recoloured copies per epoch of each row in the colour subgroups, with the colour word
    # added to the caption (colors.py); makes "红色连衣裙" / "red dress" learnable.
    # Colour accuracy 0.35 -> 0.86 on seen clothing (docs/evaluation.md); manifests without a `subgroup`
    # column are not recoloured.
    color_augment: int = 1
    color_subgroups: tuple = colors.DEFAULT_SUBGROUPS  # values of the manifest's `subgroup`
    # Share of the training examples that are bundles: two or three products of the run's
    # rows composed on one canvas, named in one caption ("咖啡和蛋糕", "a burger with fries";
    # bundles.py), a fixed 10 % of concept pairs never composed. 0 = single products only.
    bundle_share: float = 0.0
    # Start every network from this run's or release's final model (a fine-tune; weights the
    # source lacks, such as newly added layers, keep their initial values); "" = from scratch.
    init_from: str = ""
    out_dir: str = "runs/quick"
    image_size: int = 32
    batch_size: int = 16
    epochs: int = 42  # 42 x 2,507 rows of the quick groups ~ the old 150 x 708: same steps
    steps_per_epoch: int = 0  # 0 = one pass over the data
    seed: int = 0
    sequence_length: int = 16
    max_vocabulary: int = 8000
    noise_dim: int = 100
    embedding_dim: int = 128
    text_hidden_units: int = 128
    generator_channels: int = 16
    discriminator_channels: int = 16
    affine_hidden_units: int = 128
    g_learning_rate: float = 2e-4  # DF-GAN's 1e-4 (the full preset) learns too slowly here
    d_learning_rate: float = 4e-4
    ema_decay: float = 0.995
    gp_weight: float = 2.0
    gp_power: float = 6.0
    gp_every: int = 4  # lazy MA-GP: every 4th D step, weighted x4 (the full preset: every step)
    # Image-text contrastive loss (XMC-GAN); 0 = pure DF-GAN. Weight 5 gave the best
    # seen-prompt R-precision of the weights tried (1, 3, 5; docs/evaluation.md).
    contrastive_weight: float = 5.0
    contrastive_temperature: float = 0.1
    augment_shift: float = 0.125  # DiffAugment translation of D's inputs, fraction of the side
    # FastGAN (Liu et al. 2021): skip-layer excitation in G, and D redraws real images from
    # its own 8x8/16x16 features (image_size >= 32) with this weight; 0 = no decoders. With
    # concept positives in the contrastive loss, at the quick budget: seen FID 20.7 -> 18.0,
    # diversity 0.41 -> 0.51 (real 0.65), colour 0.90 -> 0.93, R-precision 0.63 -> 0.60.
    skip_excitation: bool = True
    reconstruction_weight: float = 1.0
    # Off by default: with DiffAugment colour + cutout 0.5 and mode seeking at weight 1 as
    # well, the noise, not the text, chose each sample's shape (seen R-precision 0.35,
    # FID 43.0, diversity 0.69; docs/evaluation.md).
    augment_color: bool = False  # DiffAugment brightness/saturation/contrast of D's inputs
    augment_cutout: float = 0.0  # DiffAugment cutout square, fraction of the side; 0 = none
    # MSGAN: reward two noises giving two images for one text (variety within a prompt)
    mode_seeking_weight: float = 0.0
    # AttnGAN's word attention in the generator's blocks of side >= 16: each position looks
    # up the prompt's words, so each noun of "coffee and cake" can steer its own region.
    word_attention: bool = False
    # The fewest channels of any generator block: 32 gives [.., 64, 32, 32] at 64 px instead
    # of [.., 64, 32, 16] (capacity where the picture is drawn); 0 = the schedule's own.
    # A model started from a narrower one (--init-from) is widened keeping its function.
    generator_min_channels: int = 0
    # Instance conditioning (IC-GAN; exemplars.py): the generator draws around a real
    # drawing of the product asked for (a thumbnail of this side, retrieved by the prompt's
    # nearest product name in the served graph), D checks the drawing follows it; 0 = off.
    exemplar_size: int = 0
    exemplar_threshold: float = 0.8  # least name cosine to retrieve; below, text alone
    # G's shape term: |silhouette(drawing) - silhouette(exemplar)| at the exemplar's side
    # (losses.shape_loss), so the drawing takes its exemplar's outline from the first step
    exemplar_shape_weight: float = 0.0
    # Compute dtype: auto = bfloat16 where the CPU has AMX-BF16 or AVX512-BF16 (faster
    # convolutions; bench/), float16 on a GPU, float32 elsewhere; variables, optimizer state,
    # EMA, losses and logits stay float32 either way.
    precision: str = "auto"  # auto | float32 | bfloat16 | float16
    mixed_precision: bool = False  # (older runs' flag: = --precision bfloat16 or float16)
    strategy: str = "default"  # default | mirrored | multiworker
    sample_every: int = 5  # epochs between sample grids
    sample_prompts: tuple = ("连衣裙", "jeans", "high-heeled shoe", "手提包", "披萨", "hamburger",
                             "生日蛋糕", "hot beverage", "手机", "laptop", "手表", "红苹果")
    samples_per_prompt: int = 6
    verbose: int = 1  # Keras progress output: 0 silent, 1 progress bar, 2 one line an epoch
    # Step without `tf.function` (Keras's run_eagerly): for debugging with print or pdb, and
    # quicker for runs of a few steps, such as the tests' (no ~10 s trace of the step);
    # many times slower a step otherwise. The same training either way (to float rounding).
    run_eagerly: bool = False


PRESETS = {
    "smoke": dict(out_dir="runs/smoke", groups=(), image_size=16, batch_size=8, epochs=2,
                  text_encoder="", freeze_text_encoder=False,
                  steps_per_epoch=3, sample_every=1,
                  sequence_length=8, noise_dim=16, embedding_dim=16, text_hidden_units=16,
                  generator_channels=4, discriminator_channels=4, affine_hidden_units=16,
                  reconstruction_weight=0.0,  # needs image_size >= 32
                  sample_prompts=("连衣裙", "jeans"), samples_per_prompt=2),
    "quick": {},
    # The recipe of the shipped model, models/adgan: the four product groups at 64 px
    # (docs/model-card.md: 2 h 53 min of GAN epochs on a 2-core AMD EPYC).
    "shipped": dict(out_dir="runs/shipped", image_size=64, epochs=40,
                    groups=("Food & Drink", "Objects", "Activities", "Travel & Places")),
    # The shipped model fine-tuned on a quarter of bundles (docs/bundles.md).
    "bundles": dict(out_dir="runs/bundles", image_size=64, epochs=5, bundle_share=0.25,
                    word_attention=True,
                    init_from="models/adgan", text_encoder="models/adgan",
                    groups=("Food & Drink", "Objects", "Activities", "Travel & Places"),
                    sample_every=2,
                    sample_prompts=("一杯咖啡和一块蛋糕", "coffee and cake", "汉堡和薯条",
                                    "dress and handbag", "手机和耳机", "hamburger",
                                    "连衣裙", "laptop")),
    # Instance conditioning and a wider generator tail, fine-tuned from the shipped model:
    # 68 epochs of 100 steps made the morning release of 2026-12-04 (1 h 48 min on a 2-core
    # AMD EPYC); 70 more from it with `--precision bfloat16 --epochs 70` (50 min on one
    # core of an AMX Xeon) the shipped one (docs/model-card.md).
    "instance": dict(out_dir="runs/instance", image_size=64, epochs=68, steps_per_epoch=100,
                     generator_min_channels=32, exemplar_size=16, exemplar_shape_weight=2.0,
                     init_from="models/adgan",  # its text encoder too: `auto` finds it
                     groups=("Food & Drink", "Objects", "Activities", "Travel & Places"),
                     sample_every=4),
    "full": dict(out_dir="runs/full", groups=(), image_size=64, batch_size=32, epochs=600,
                 generator_channels=32, discriminator_channels=32, affine_hidden_units=256,
                 g_learning_rate=1e-4, ema_decay=0.999, gp_every=1),
}
# Settings added after runs were first made, with the values that reproduce those runs
# (a run folder whose config.json lacks them was trained that way).
LEGACY_SETTINGS = {"color_augment": 0, "color_subgroups": colors.DEFAULT_SUBGROUPS,
                   "style_words": False, "augment_color": False, "augment_cutout": 0.0,
                   "skip_excitation": False, "reconstruction_weight": 0.0,
                   "mode_seeking_weight": 0.0, "precision": "float32", "bundle_share": 0.0,
                   "init_from": "", "word_attention": False, "generator_min_channels": 0,
                   "exemplar_size": 0, "exemplar_threshold": 0.8, "exemplar_shape_weight": 0.0,
                   "run_eagerly": False}
# Settings that may change when a run folder is resumed.
RESUMABLE_CHANGES = ("epochs", "verbose", "run_eagerly")
STRATEGIES = ("default", "mirrored", "multiworker")
RECIPES = ("dfgan", "baseline")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
FIELDS = {field.name: field for field in dataclasses.fields(TrainConfig)}


def config_errors(config):
    """List of problems with a resolved config (empty when valid)."""
    errors = []
    if config.recipe not in RECIPES:
        errors.append(f"recipe must be one of {', '.join(RECIPES)}, got {config.recipe!r}")
    if config.strategy not in STRATEGIES:
        errors.append(f"strategy must be one of {', '.join(STRATEGIES)}, got {config.strategy!r}")
    if config.precision not in PRECISIONS:
        errors.append(f"precision must be one of {', '.join(PRECISIONS)}, "
                      f"got {config.precision!r}")
    if config.reconstruction_weight > 0 and config.image_size < 32:
        errors.append(f"reconstruction_weight needs image_size >= 32 (got {config.image_size}); "
                      "set it to 0")
    if not 0 <= config.augment_cutout < 1:
        errors.append(f"augment_cutout must be in [0, 1), got {config.augment_cutout}")
    if not 0 <= config.bundle_share < 1:
        errors.append(f"bundle_share must be in [0, 1), got {config.bundle_share}")
    if config.color_augment < 0:
        errors.append(f"color_augment must be 0 or more, got {config.color_augment}")
    for name in ("image_size", "batch_size", "epochs", "sequence_length", "samples_per_prompt",
                 "sample_every", "gp_every"):
        if getattr(config, name) < 1:
            errors.append(f"{name} must be positive, got {getattr(config, name)}")
    if config.image_size < 8 or config.image_size & (config.image_size - 1):
        errors.append(f"image_size must be a power of two >= 8, got {config.image_size}")
    if not config.caption_columns:
        errors.append("caption_columns must name at least one column")
    return errors


def coerce(field, value):
    """Convert a JSON value to the field's type, or raise ValueError naming the field."""
    kind = type(field.default)
    if kind is tuple:
        if isinstance(value, str):
            value = split_list(value)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{field.name}: expected a list, got {value!r}")
        return tuple(str(v) for v in value)
    if kind is bool and not isinstance(value, bool):
        raise ValueError(f"{field.name}: expected true or false, got {value!r}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{field.name}: expected an integer, got {value!r}")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"{field.name}: expected a number, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ValueError(f"{field.name}: expected a string, got {value!r}")
    return kind(value)


def coerce_settings(settings):
    """{name: JSON value} -> {name: typed value}; ValueError names an unknown or bad setting."""
    if not isinstance(settings, dict):
        raise ValueError("expected a JSON object of settings")
    unknown = sorted(set(settings) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}")
    return {name: coerce(FIELDS[name], value) for name, value in settings.items()}


def make_parser(description=None):
    """Argument parser generated from `TrainConfig`; only flags actually given are set."""
    parser = argparse.ArgumentParser(description=description,
                                     argument_default=argparse.SUPPRESS, allow_abbrev=False)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--config", help="JSON file of settings (applied after the preset)")
    return add_dataclass_flags(parser, TrainConfig)


def resolve_config(argv=None, description=None):
    """Preset -> --config JSON -> flags; returns a validated `TrainConfig`."""
    parser = make_parser(description)
    args = vars(parser.parse_args(argv))
    settings = dict(PRESETS[args.pop("preset")])
    config_file = args.pop("config", None)
    if config_file:
        try:
            with open(config_file, encoding="utf-8") as f:
                settings.update(coerce_settings(json.load(f)))
        except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
            parser.error(f"--config {config_file}: {error}")
    settings.update(args)
    config = TrainConfig(**settings)
    errors = config_errors(config)
    if errors:
        parser.error("; ".join(errors))
    return config


def changed_settings(saved, config):
    """Names of the settings (other than `RESUMABLE_CHANGES`) in which two configs differ."""
    return sorted(name for name in FIELDS if name not in RESUMABLE_CHANGES
                  and getattr(saved, name) != getattr(config, name))
