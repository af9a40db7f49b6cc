"""Train the text-to-image GAN: `python train.py [--preset quick|smoke|full] [--flag value ...]`.

Settings come from one frozen `TrainConfig`; precedence is preset -> `--config
file.json` -> command-line flags, and unknown or ill-typed settings are errors.
The run folder (`--out-dir`) receives config.json, the data report, the
vocabulary, checkpoints, TensorBoard logs, sample grids, the final model and the
calibration of its discriminator gate (final/calibration.json, see gate.py).
Running the same command again resumes from the last checkpoint.
"""

import argparse
import dataclasses
import json
import os
import sys

import keras
import tensorflow as tf

import colors
import data_loader
import gate as gating
from training import SampleGrid, StopOnNonFinite, TrainingCheckpoint, load_training_state


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (the defaults are the `quick` preset)."""

    recipe: str = "dfgan"  # dfgan (ours) | baseline (keras.io conditional GAN, for comparison)
    manifest: str = data_loader.DEFAULT_MANIFEST
    image_column: str = "image"
    caption_columns: tuple = data_loader.DEFAULT_CAPTION_COLUMNS
    split: str = "train"  # rows of the manifest's `split` column to train on; "" = all
    groups: tuple = ("Food & Drink", "Objects")  # rows of its `group` column; () = all
    styles: tuple = ()  # rows of its `style` column (noto, twemoji); () = all
    # Start from a pretrained text encoder (a dual encoder, evaluate.py train-encoder) and keep
    # it fixed, as DF-GAN does: seen-prompt R-precision 0.24 -> 0.41, FID 25.7 -> 21.0 (README).
    # "auto" first trains the run's own (RUN/text_encoder) on all training rows of the
    # manifest (every group: one trained on the run's groups alone did not help); "" = none.
    text_encoder: str = "auto"
    freeze_text_encoder: bool = True  # (only with a text encoder)
    text_encoder_epochs: int = 100  # for "auto"
    # Recoloured copies per epoch of each row in the colour subgroups, with the colour word
    # added to the caption (colors.py); makes "红色连衣裙" / "red dress" learnable.
    # Colour accuracy 0.35 -> 0.86 on seen clothing (README); manifests without a `subgroup`
    # column are not recoloured.
    color_augment: int = 1
    color_subgroups: tuple = colors.DEFAULT_SUBGROUPS  # values of the manifest's `subgroup`
    out_dir: str = "runs/quick"
    image_size: int = 32
    batch_size: int = 16
    epochs: int = 150
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
    g_learning_rate: float = 2e-4  # DF-GAN's 1e-4 (the full preset) learns too slowly in 10 min
    d_learning_rate: float = 4e-4
    ema_decay: float = 0.995
    gp_weight: float = 2.0
    gp_power: float = 6.0
    gp_every: int = 4  # lazy MA-GP: every 4th D step, weighted x4 (the full preset: every step)
    # image-text contrastive loss (XMC-GAN); 0 = pure DF-GAN. 5 (was 1): seen-prompt
    # R-precision 0.41 -> 0.54 at the quick budget, with colour augmentation (README)
    contrastive_weight: float = 5.0
    contrastive_temperature: float = 0.1
    augment_shift: float = 0.125  # DiffAugment translation of D's inputs, fraction of the side
    mixed_precision: bool = False
    strategy: str = "default"  # default | mirrored | multiworker
    sample_every: int = 5  # epochs between sample grids
    sample_prompts: tuple = ("连衣裙", "jeans", "high-heeled shoe", "手提包", "披萨", "hamburger",
                             "生日蛋糕", "hot beverage", "手机", "laptop", "手表", "红苹果")
    samples_per_prompt: int = 6
    verbose: int = 1  # Keras progress output: 0 silent, 1 progress bar, 2 one line an epoch


PRESETS = {
    "smoke": dict(out_dir="runs/smoke", groups=(), image_size=16, batch_size=8, epochs=2,
                  text_encoder="", freeze_text_encoder=False,
                  steps_per_epoch=3, sample_every=1,
                  sequence_length=8, noise_dim=16, embedding_dim=16, text_hidden_units=16,
                  generator_channels=4, discriminator_channels=4, affine_hidden_units=16,
                  sample_prompts=("连衣裙", "jeans"), samples_per_prompt=2),
    "quick": {},
    "full": dict(out_dir="runs/full", groups=(), image_size=64, batch_size=32, epochs=600,
                 generator_channels=32, discriminator_channels=32, affine_hidden_units=256,
                 g_learning_rate=1e-4, ema_decay=0.999, gp_every=1),
}
# Settings added after runs were first made, with the values that reproduce those runs
# (a run folder without them was trained that way).
LEGACY_SETTINGS = {"color_augment": 0, "color_subgroups": colors.DEFAULT_SUBGROUPS}
STRATEGIES = ("default", "mirrored", "multiworker")
RECIPES = ("dfgan", "baseline")


def config_errors(config):
    """List of problems with a resolved config (empty when valid)."""
    errors = []
    if config.recipe not in RECIPES:
        errors.append(f"recipe must be one of {', '.join(RECIPES)}, got {config.recipe!r}")
    if config.strategy not in STRATEGIES:
        errors.append(f"strategy must be one of {', '.join(STRATEGIES)}, got {config.strategy!r}")
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
            value = [v for v in value.split(",") if v]
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


def make_parser():
    """Argument parser generated from `TrainConfig`; only flags actually given are set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     argument_default=argparse.SUPPRESS, allow_abbrev=False)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--config", help="JSON file of settings (applied after the preset)")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        kind = type(field.default)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction)
        elif kind is tuple:
            parser.add_argument(flag, type=lambda s: tuple(v for v in s.split(",") if v),
                                help="comma-separated list")
        else:
            parser.add_argument(flag, type=kind, help=f"default {field.default!r}")
    return parser


def resolve_config(argv=None):
    """Preset -> --config JSON -> flags; returns a validated `TrainConfig`."""
    parser = make_parser()
    args = vars(parser.parse_args(argv))
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    settings = dict(PRESETS[args.pop("preset")])
    config_file = args.pop("config", None)
    if config_file:
        try:
            with open(config_file, encoding="utf-8") as f:
                from_file = json.load(f)
        except (OSError, json.JSONDecodeError) as error:
            parser.error(f"--config {config_file}: {error}")
        if not isinstance(from_file, dict):
            parser.error(f"--config {config_file}: expected a JSON object of settings")
        unknown = sorted(set(from_file) - set(fields))
        if unknown:
            parser.error(f"--config {config_file}: unknown setting(s) {', '.join(unknown)}")
        try:
            settings.update({k: coerce(fields[k], v) for k, v in from_file.items()})
        except ValueError as error:
            parser.error(f"--config {config_file}: {error}")
    settings.update(args)
    config = TrainConfig(**settings)
    errors = config_errors(config)
    if errors:
        parser.error("; ".join(errors))
    return config


def make_strategy(name):
    """The tf.distribute strategy for `--strategy`.

    `mirrored` uses every GPU, or every logical CPU device when there is no GPU.
    """
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def set_precision(mixed):
    """mixed_float16 on a GPU, mixed_bfloat16 on a CPU, float32 otherwise; returns the name."""
    if not mixed:
        policy = "float32"
    else:
        policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def check_resumable(config, run_dir):
    """Refuse to mix two different runs in one folder (only `epochs` and `verbose` may change)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    current = json.loads(json.dumps(dataclasses.asdict(config)))
    legacy = json.loads(json.dumps(LEGACY_SETTINGS))
    changed = sorted(k for k in current if k not in ("epochs", "verbose")
                     and saved.get(k, legacy.get(k)) != current[k])
    if changed:
        sys.exit(f"train: {run_dir} holds a run with other settings ({', '.join(changed)}); "
                 "use another --out-dir or the same settings to resume")


def prepare_vocabulary(examples, config, run_dir, pretrained=None):
    """Load the run's vocabulary if it has one (resume), else build and save it.

    With a `pretrained` dual encoder, its vocabulary is the run's.
    """
    path = os.path.join(run_dir, "vocabulary.txt")
    if os.path.exists(path):
        return data_loader.load_vocabulary(path)
    if pretrained is not None:
        vocabulary = pretrained.vocabulary
    else:
        vocabulary = data_loader.examples_vocabulary(examples, config.max_vocabulary,
                                                     config.color_augment)
    data_loader.save_vocabulary(vocabulary, path)
    return vocabulary


def load_pretrained_text_encoder(config, run_dir):
    """The dual encoder of `--text-encoder` (None without one); exits on a size mismatch.

    "auto" is RUN/text_encoder, trained here on all of the manifest's training rows
    (whatever the run's groups) if missing.
    """
    if not config.text_encoder:
        return None
    from encoder import ENCODER_FILE, load_encoder

    path = config.text_encoder
    if path == "auto":
        path = os.path.join(run_dir, "text_encoder")
        if not os.path.exists(os.path.join(path, ENCODER_FILE)):
            import evaluate

            print(f"train: training the run's text encoder first ({config.text_encoder_epochs} "
                  f"epochs on all training rows; --text-encoder '' skips it) into {path}")
            evaluate.train_encoder(evaluate.EncoderConfig(
                data=config.manifest, out=path, image_column=config.image_column,
                caption_columns=config.caption_columns, split=config.split,
                epochs=config.text_encoder_epochs, color_augment=config.color_augment,
                color_subgroups=config.color_subgroups,
                sequence_length=config.sequence_length, embedding_dim=config.embedding_dim,
                text_hidden_units=config.text_hidden_units,
                max_vocabulary=config.max_vocabulary, seed=config.seed,
                verbose=config.verbose))
    try:
        pretrained = load_encoder(path)
    except (FileNotFoundError, OSError, ValueError) as error:
        sys.exit(f"train: --text-encoder: {error}")
    mismatched = [f"{name} {getattr(pretrained, name)} (run: {getattr(config, name)})"
                  for name in ("sequence_length", "embedding_dim", "text_hidden_units")
                  if getattr(pretrained, name) != getattr(config, name)]
    if mismatched:
        sys.exit(f"train: --text-encoder {config.text_encoder} has other sizes: "
                 f"{', '.join(mismatched)}; set the run's to match")
    return pretrained


def use_pretrained(gan, pretrained, freeze):
    """Start the GAN's text encoder from a dual encoder's (a resume overwrites it later)."""
    if pretrained is None:
        return
    gan.text_encoder.set_weights(pretrained.text_encoder.get_weights())
    gan.text_encoder.trainable = not freeze


def build_gan(config, vocabulary, pretrained=None):
    """The `TextToImageGAN` for a config, compiled with two-timescale Adam.

    `recipe="baseline"` gives the keras.io conditional GAN (`baseline.py`) with its
    own optimizers instead. A `pretrained` dual encoder's text encoder weights are
    copied in (and frozen with `freeze_text_encoder`) before the optimizers are built.
    """
    from model import TextToImageGAN

    if config.recipe == "baseline":
        from baseline import BaselineGAN

        gan = BaselineGAN(vocabulary, image_size=config.image_size,
                          sequence_length=config.sequence_length, noise_dim=config.noise_dim,
                          embedding_dim=config.embedding_dim,
                          text_hidden_units=config.text_hidden_units,
                          generator_channels=config.generator_channels,
                          discriminator_channels=config.discriminator_channels, seed=config.seed)
        use_pretrained(gan, pretrained, config.freeze_text_encoder)
        gan.compile()
        gan.build_optimizers()
        return gan

    gan = TextToImageGAN(
        vocabulary, image_size=config.image_size, sequence_length=config.sequence_length,
        noise_dim=config.noise_dim, embedding_dim=config.embedding_dim,
        text_hidden_units=config.text_hidden_units,
        generator_channels=config.generator_channels,
        discriminator_channels=config.discriminator_channels,
        affine_hidden_units=config.affine_hidden_units, ema_decay=config.ema_decay,
        gp_weight=config.gp_weight, gp_power=config.gp_power, gp_every=config.gp_every,
        contrastive_weight=config.contrastive_weight,
        contrastive_temperature=config.contrastive_temperature,
        augment_shift=config.augment_shift, seed=config.seed)
    use_pretrained(gan, pretrained, config.freeze_text_encoder)
    gan.compile(g_optimizer=keras.optimizers.Adam(config.g_learning_rate, beta_1=0.0, beta_2=0.9),
                d_optimizer=keras.optimizers.Adam(config.d_learning_rate, beta_1=0.0, beta_2=0.9))
    gan.build_optimizers()
    return gan


def main(argv=None):
    """Train (or resume) a run; returns the run folder."""
    config = resolve_config(argv)
    run_dir = config.out_dir
    os.makedirs(run_dir, exist_ok=True)
    check_resumable(config, run_dir)
    data_loader.write_json(dataclasses.asdict(config), os.path.join(run_dir, "config.json"))
    keras.utils.set_random_seed(config.seed)
    policy = set_precision(config.mixed_precision)

    try:
        examples, report = data_loader.load_examples(
            config.manifest, config.image_size, config.image_column, config.caption_columns,
            config.split or None, {"group": config.groups, "style": config.styles},
            data_loader.recolor_filter(config.manifest, config.color_subgroups,
                                       config.color_augment))
    except data_loader.ManifestError as error:
        sys.exit(f"train: {error}")
    if config.color_augment and not report["recolorable"]:
        print(f"train: note: colour augmentation has nothing to recolour (no usable row of "
              f"subgroup {', '.join(config.color_subgroups)}, or no `subgroup` column)")
    data_loader.write_json(report, os.path.join(run_dir, "data_report.json"))
    if len(examples) < config.batch_size and not config.steps_per_epoch:
        sys.exit(f"train: {len(examples)} usable rows is fewer than one batch "
                 f"({config.batch_size}); lower --batch-size")
    if report["skipped"]:
        print(f"train: skipped {report['skipped']} bad row(s); see "
              f"{os.path.join(run_dir, 'data_report.json')}")
    pretrained = load_pretrained_text_encoder(config, run_dir)
    vocabulary = prepare_vocabulary(examples, config, run_dir, pretrained)

    strategy = make_strategy(config.strategy)
    with strategy.scope():
        gan = build_gan(config, vocabulary, pretrained)
    initial_epoch = load_training_state(gan, os.path.join(run_dir, "checkpoints"))
    if initial_epoch:
        print(f"train: resuming {run_dir} after epoch {initial_epoch}")

    repeat = config.steps_per_epoch > 0
    dataset = data_loader.make_dataset(examples, config.image_size, config.batch_size,
                                       seed=config.seed, repeat=repeat,
                                       vectorizer=gan.vectorizer,
                                       color_augment=config.color_augment)
    non_finite = StopOnNonFinite()
    callbacks = [
        non_finite,
        TrainingCheckpoint(os.path.join(run_dir, "checkpoints"), non_finite),
        SampleGrid(os.path.join(run_dir, "samples"), config.sample_prompts,
                   config.samples_per_prompt, config.sample_every, config.seed,
                   os.path.join(run_dir, "logs", "samples"), non_finite),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")),
    ]
    print(f"train: {len(examples)} examples"
          + (f" (+{config.color_augment} x {report['recolorable']} recoloured)"
             if config.color_augment and report["recolorable"] else "")
          + f", {len(vocabulary)} tokens, "
          f"{config.image_size}x{config.image_size}, policy {policy}, "
          f"{strategy.num_replicas_in_sync} replica(s)")
    if initial_epoch < config.epochs:
        gan.fit(dataset, epochs=config.epochs, initial_epoch=initial_epoch,
                steps_per_epoch=config.steps_per_epoch or None, callbacks=callbacks,
                verbose=config.verbose)
    if non_finite.error:
        sys.exit(f"train: {non_finite.error}; the last good checkpoint is in "
                 f"{os.path.join(run_dir, 'checkpoints')}")

    final = os.path.join(run_dir, "final")
    os.makedirs(final, exist_ok=True)
    tmp = os.path.join(final, "model.keras.tmp.keras")
    gan.save(tmp)
    os.replace(tmp, os.path.join(final, "model.keras"))
    data_loader.save_vocabulary(vocabulary, os.path.join(final, "vocabulary.txt"))
    calibration = gating.calibrate_run(gan, run_dir)
    print(f"train: discriminator gate {gating.describe(calibration)}")
    print(f"train: done. Run folder {run_dir}: final model {final}/model.keras, samples in "
          f"{run_dir}/samples, TensorBoard logs in {run_dir}/logs")
    return run_dir


def console_main():
    """Entry point of the installed console script (its exit status is 0 on success)."""
    main()


if __name__ == "__main__":
    main()
