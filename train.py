"""Train the text-to-image GAN: `python train.py [--preset quick|smoke|full] [--flag value ...]`.

The settings are a `TrainConfig` (config.py): preset -> `--config file.json` -> flags;
unknown or ill-typed settings are errors. The run folder (`--out-dir`, adgan/runs/) receives
config.json, the data report, the vocabulary, checkpoints, TensorBoard logs, sample grids,
the final model and its gate's calibration. The same command again resumes from the last
checkpoint.
"""

import dataclasses
import inspect
import os
import shutil
import sys

import adgan  # noqa: F401  (first: TensorFlow starts quietly, adgan/quiet.py)
import keras
import tensorflow as tf

from adgan.drawing.calibrate import calibrate_run
from adgan.drawing.gate import describe
from adgan.helpers import atomic_path, progress_verbosity, run_command, write_json
from adgan.runs import layout
from adgan.runs.artifacts import load_model, load_run_text_encoder
from adgan.runs.layout import RunError, load_config, run_path, save_config
from adgan.runs.rows import config_style_words, manifest_rows
from adgan.text import tokenizer
from adgan.text.encoder import ENCODER_FILE, EncoderConfig, load_encoder, train_encoder
from adgan.training import exemplars
from adgan.training.baseline import BaselineGAN
from adgan.training.callbacks import SampleGrid, StopOnNonFinite, TrainingCheckpoint
from adgan.training.checkpoints import (CheckpointError, copy_model_weights, load_training_state,
                                        saved_epoch)
from adgan.training.config import FIELDS, changed_settings, resolve_config
from adgan.training.distribute import (fit_across_workers, make_strategy, set_precision,
                                       weights_fingerprint, worker_out_dir)
import data_loader
from model import TextToImageGAN


def check_resumable(config, run_dir):
    """Refuse to mix two different runs in one folder (only `epochs` and `verbose` may change)."""
    if not os.path.exists(run_path(run_dir, "config")):
        return
    try:
        changed = changed_settings(load_config(run_dir), config)
    except RunError as error:
        sys.exit(f"train: {error}")
    if changed:
        sys.exit(f"train: {run_dir} holds a run with other settings ({', '.join(changed)}); "
                 "use another --out-dir or the same settings to resume")


def prepare_vocabulary(examples, config, run_dir, pretrained=None, style_words=None):
    """Load the run's vocabulary if it has one (resume), else build and save it.

    With a `pretrained` dual encoder, its vocabulary is the run's.
    """
    path = run_path(run_dir, "vocabulary")
    if os.path.exists(path):
        return tokenizer.load_vocabulary(path)
    if pretrained is not None:
        vocabulary = pretrained.vocabulary
        unknown = tokenizer.unknown_words(
            [word for pair in (style_words or {}).values() for word in pair], vocabulary)
        if unknown:
            print(f"train: note: the text encoder does not know the style word(s) "
                  f"{', '.join(unknown)}; prompts cannot ask for those styles")
    else:
        vocabulary = tokenizer.examples_vocabulary(examples, config.max_vocabulary,
                                                     config.color_augment, style_words)
    tokenizer.save_vocabulary(vocabulary, path)
    return vocabulary


def run_encoder_config(config, out):
    """The `EncoderConfig` of a run's own text encoder: the run's manifest, every group and
    style, its text sizes, colour augmentation and seed."""
    return EncoderConfig(
        data=config.manifest, out=out, image_column=config.image_column,
        caption_columns=config.caption_columns, split=config.split,
        epochs=config.text_encoder_epochs, color_augment=config.color_augment,
        color_subgroups=config.color_subgroups, sequence_length=config.sequence_length,
        embedding_dim=config.embedding_dim, text_hidden_units=config.text_hidden_units,
        max_vocabulary=config.max_vocabulary, style_words=config.style_words, seed=config.seed,
        verbose=config.verbose)


def shipped_text_encoder_fits(config):
    """True when the shipped model's text encoder is the one `auto` would train for `config`:
    trained by `auto` with the same encoder settings (manifest, split, sizes, epochs, colour
    augmentation, seed) and kept frozen, so a run can start from it instead (~25 minutes)."""
    if not os.path.exists(run_path(layout.SHIPPED_RUN, "model")):
        return False
    try:
        shipped = load_config(layout.SHIPPED_RUN)
    except RunError:
        return False

    def settings(run_config):  # what decides the encoder `auto` trains
        return dataclasses.replace(run_encoder_config(run_config, ""), verbose=0,
                                   data=os.path.realpath(run_config.manifest))

    return (shipped.text_encoder == "auto" and shipped.freeze_text_encoder
            and settings(shipped) == settings(config))


def auto_text_encoder(config, run_dir):
    """The folder `--text-encoder auto` means: RUN/text_encoder; when missing, the shipped
    model if its text encoder fits (`shipped_text_encoder_fits`), else RUN/text_encoder
    trained now on all of the manifest's training rows (whatever the run's groups)."""
    path = run_path(run_dir, "text_encoder")
    if os.path.exists(os.path.join(path, ENCODER_FILE)):
        return path
    if shipped_text_encoder_fits(config):
        print(f"train: starting from the shipped model's text encoder ({layout.SHIPPED_RUN}), "
              "the one `auto` would train here")
        return layout.SHIPPED_RUN
    print(f"train: training the run's text encoder first ({config.text_encoder_epochs} "
          f"epochs on all training rows; --text-encoder '' skips it) into {path}")
    train_encoder(run_encoder_config(config, path))
    return path


def load_pretrained_text_encoder(config, run_dir):
    """The text encoder of `--text-encoder` (None without one); exits on a size mismatch.

    It is a dual encoder's folder (encoder.py), a trained run or release folder (its final
    model's text encoder), or "auto" (`auto_text_encoder`).
    """
    if not config.text_encoder:
        return None
    path = config.text_encoder
    if path == "auto":
        path = auto_text_encoder(config, run_dir)
    try:
        if os.path.exists(run_path(path, "model")):
            pretrained = load_run_text_encoder(path)
        else:
            pretrained = load_encoder(path)
    except (FileNotFoundError, OSError, ValueError, RunError) as error:
        sys.exit(f"train: --text-encoder: {error}")
    mismatched = [f"{name} {getattr(pretrained, name)} (run: {getattr(config, name)})"
                  for name in ("sequence_length", "embedding_dim", "text_hidden_units")
                  if getattr(pretrained, name) != getattr(config, name)]
    if mismatched:
        sys.exit(f"train: --text-encoder {config.text_encoder} has other sizes: "
                 f"{', '.join(mismatched)}; set the run's to match")
    return pretrained


def use_pretrained(gan, pretrained, freeze):
    """Start the GAN's text encoder from a pretrained one (a resume overwrites it later)."""
    if pretrained is None:
        return
    gan.text_encoder.set_weights(pretrained.text_encoder.get_weights())
    gan.text_encoder.trainable = not freeze


def build_gan(config, vocabulary, pretrained=None, exemplar_shape=(0, 0, 0), style_words=None):
    """The `TextToImageGAN` for a config, compiled with two-timescale Adam.

    `recipe="baseline"` gives the keras.io conditional GAN (`baseline.py`) with its
    own optimizers instead. A `pretrained` dual encoder's text encoder weights are
    copied in (and frozen with `freeze_text_encoder`) before the optimizers are built.
    `exemplar_shape` (products, drawing styles, keys) sizes the instance conditioning's bank;
    its retrieval also matches prompts without their colour and `style_words`.
    """
    if config.recipe == "baseline":
        gan = BaselineGAN(vocabulary, image_size=config.image_size,
                          sequence_length=config.sequence_length, noise_dim=config.noise_dim,
                          embedding_dim=config.embedding_dim,
                          text_hidden_units=config.text_hidden_units,
                          generator_channels=config.generator_channels,
                          discriminator_channels=config.discriminator_channels, seed=config.seed)
        use_pretrained(gan, pretrained, config.freeze_text_encoder)
        gan.compile(run_eagerly=config.run_eagerly)
        gan.build_optimizers()
        return gan

    # Every constructor argument but the vocabulary is the run setting of the same name.
    arguments = inspect.signature(TextToImageGAN).parameters
    gan = TextToImageGAN(vocabulary, **{name: getattr(config, name) for name in arguments
                                        if name in FIELDS},
                         exemplar_products=exemplar_shape[0], exemplar_slots=exemplar_shape[1],
                         exemplar_keys=exemplar_shape[2],
                         exemplar_ignored_words=exemplars.ignored_words(style_words))
    use_pretrained(gan, pretrained, config.freeze_text_encoder)
    gan.compile(g_optimizer=keras.optimizers.Adam(config.g_learning_rate, beta_1=0.0, beta_2=0.9),
                d_optimizer=keras.optimizers.Adam(config.d_learning_rate, beta_1=0.0, beta_2=0.9),
                run_eagerly=config.run_eagerly)
    gan.build_optimizers()
    return gan


def start_run(config):
    """Create (or reopen) the run folder, record the settings, seed everything and set the
    precision policy; returns (config, the policy's name).

    Resuming a run already trained past `--epochs` trains nothing more and keeps the
    recorded settings (the returned config has the recorded epoch count).
    """
    os.makedirs(config.out_dir, exist_ok=True)
    check_resumable(config, config.out_dir)
    done = saved_epoch(run_path(config.out_dir, "checkpoints"))
    if done >= config.epochs and os.path.exists(run_path(config.out_dir, "config")):
        print(f"train: {config.out_dir} is already trained for {done} epochs (--epochs "
              f"{config.epochs}); nothing more to train, its recorded settings are kept")
        # the run ends where it is, even if its recorded settings asked for more epochs
        config = dataclasses.replace(config, epochs=done)
    else:
        save_config(config, config.out_dir)
    keras.utils.set_random_seed(config.seed)
    return config, set_precision(config.precision, config.mixed_precision)


def load_training_rows(config):
    """(checked training rows, data report, style words) of the run; writes the data report
    and the style words, and exits on unusable data."""
    run_dir = config.out_dir
    try:
        examples, report = manifest_rows(config, config.split,
                                              mark_recolorable=config.color_augment > 0)
        style_words = config_style_words(config)
    except data_loader.ManifestError as error:
        sys.exit(f"train: {error}")
    write_json({style: list(pair) for style, pair in style_words.items()},
               run_path(run_dir, "style_words"))
    if config.color_augment and not report["recolorable"]:
        print(f"train: note: colour augmentation has nothing to recolour (no usable row of "
              f"subgroup {', '.join(config.color_subgroups)}, or no `subgroup` column)")
    write_json(report, run_path(run_dir, "data_report"))
    if len(examples) < config.batch_size and not config.steps_per_epoch:
        sys.exit(f"train: {len(examples)} usable rows is fewer than one batch "
                 f"({config.batch_size}); lower --batch-size")
    if report["skipped"]:
        print(f"train: skipped {report['skipped']} bad row(s); see "
              f"{run_path(run_dir, 'data_report')}")
    return examples, report, style_words


def make_callbacks(config, guard):
    """Checkpoint, sample grids and TensorBoard logs, all silent once `guard` has fired."""
    run_dir = config.out_dir
    # The grid is drawn before the checkpoint, so an epoch whose checkpoint exists always
    # has its grid (a kill in between redraws the same grid on resume).
    return [guard,
            SampleGrid(run_path(run_dir, "samples"), config.sample_prompts,
                       config.samples_per_prompt, config.sample_every, config.seed,
                       os.path.join(run_path(run_dir, "logs"), "samples"), guard),
            TrainingCheckpoint(run_path(run_dir, "checkpoints"), guard),
            keras.callbacks.TensorBoard(run_path(run_dir, "logs"))]


def finish_run(gan, vocabulary, run_dir):
    """Save the final model and vocabulary, and calibrate the discriminator gate."""
    os.makedirs(run_path(run_dir, "final"), exist_ok=True)
    with atomic_path(run_path(run_dir, "model")) as tmp:
        gan.save(tmp)
    tokenizer.save_vocabulary(vocabulary, run_path(run_dir, "final_vocabulary"))
    if keras.mixed_precision.global_policy().name != "float32":
        # the gate is calibrated on the model as it is served: in float32, however it trained
        keras.mixed_precision.set_global_policy("float32")
        gan = load_model(run_dir)
    print(f"train: discriminator gate {describe(calibrate_run(gan, run_dir))}")


def restore_training_state(gan, checkpoint_dir):
    """The epoch to resume after (`load_training_state`); exits when no checkpoint is usable.

    Every worker of a multi-worker run reads the chief's checkpoint folder (a shared
    filesystem), so all resume from the same state; only the chief writes there.
    """
    try:
        return load_training_state(gan, checkpoint_dir, log=lambda m: print(f"train: {m}"))
    except CheckpointError as error:
        sys.exit(f"train: {error}")


def start_from(gan, source_dir):
    """Copy the weights of `source_dir`'s final model into a new run's `gan` (`--init-from`)."""
    try:
        new = copy_model_weights(load_model(source_dir), gan)
    except (RunError, CheckpointError) as error:
        sys.exit(f"train: --init-from {error}")
    print(f"train: starting from {source_dir}"
          + (f" ({len(new)} new weight(s) start fresh: {', '.join(new[:3])}...)" if new else ""))


def main(argv=None):
    """Train (or resume) a run; returns the run folder."""
    config = resolve_config(argv, description=__doc__.splitlines()[0])
    run_dir = config.out_dir
    try:
        strategy = make_strategy(config.strategy)  # first: collectives are set up before any op
    except ValueError as error:
        sys.exit(f"train: {error}")
    out_dir, chief = worker_out_dir(run_dir, strategy)
    config = dataclasses.replace(config, out_dir=out_dir)
    policy = keras.mixed_precision.global_policy()  # a caller's (a test's) own, given back
    try:
        train(config, strategy, chief, run_path(run_dir, "checkpoints"))
    finally:
        keras.mixed_precision.set_global_policy(policy)
        if not chief:
            shutil.rmtree(config.out_dir, ignore_errors=True)
    return run_dir


def train(config, strategy, chief, checkpoint_dir):
    """Everything `main` does once the strategy exists: data, model, fit, final model
    (resuming from `checkpoint_dir`, the chief's)."""
    run_dir = config.out_dir
    config, policy = start_run(config)
    examples, report, style_words = load_training_rows(config)
    pretrained = load_pretrained_text_encoder(config, run_dir)
    vocabulary = prepare_vocabulary(examples, config, run_dir, pretrained, style_words)
    bank = (exemplars.build_catalogue(examples, style_words, tokenizer.make_text_vectorizer(
                vocabulary, config.sequence_length), config.exemplar_size)
            if config.exemplar_size and config.recipe != "baseline" else None)
    with strategy.scope():
        gan = build_gan(config, vocabulary, pretrained,
                        (0, 0, 0) if bank is None else bank.shape, style_words)
    initial_epoch = restore_training_state(gan, checkpoint_dir)
    if initial_epoch:
        print(f"train: resuming {os.path.dirname(checkpoint_dir)} after epoch {initial_epoch}")
    elif config.init_from:
        start_from(gan, config.init_from)
    if bank is not None:  # after the text encoder's weights are final for this start
        exemplars.fill_bank(gan, bank)
    dataset, steps = training_data(examples, config, gan.vectorizer, style_words,
                                   initial_epoch)
    print(f"train: {len(examples)} examples"
          + (f" (+{config.color_augment} x {report['recolorable']} recoloured)"
             if config.color_augment and report["recolorable"] else "")
          + (f", styles named: {', '.join(style_words)}" if style_words else "")
          + f", {len(vocabulary)} tokens, {config.image_size}x{config.image_size}, "
          f"policy {policy}, {strategy.num_replicas_in_sync} replica(s)")
    guard = StopOnNonFinite()
    if initial_epoch < config.epochs:
        fit(gan, dataset, steps, config, initial_epoch, make_callbacks(config, guard), strategy)
    if guard.error:
        sys.exit(f"train: {guard.error}; the last good checkpoint is in "
                 f"{run_path(run_dir, 'checkpoints')}")
    if bank is not None and gan.text_encoder.trainable:
        exemplars.fill_bank(gan, bank)  # the keys' vectors moved with the text encoder
    finish_run(gan, vocabulary, run_dir)
    if config.strategy == "multiworker":  # the workers' copies must agree
        print(f"train: weights fingerprint {weights_fingerprint(gan)}")
    if chief:
        print(f"train: done. Run folder {run_dir}: final model {run_path(run_dir, 'model')}, "
              f"samples in {run_path(run_dir, 'samples')}, TensorBoard logs in "
              f"{run_path(run_dir, 'logs')}")


def training_data(examples, config, vectorizer, style_words, initial_epoch):
    """(the repeating tf.data pipeline where training left it after `initial_epoch` epochs,
    steps an epoch: `--steps-per-epoch`, else one pass over the data). A resumed run sees
    the very batches an uninterrupted one would; several workers take as many batches as
    each other."""
    steps = config.steps_per_epoch or data_loader.batches_per_epoch(
        examples, config.batch_size, config.color_augment)
    bundles = (data_loader.bundle_source(examples, config.image_size, style_words, config.seed)
               if config.bundle_share else None)
    dataset = data_loader.make_dataset(examples, config.image_size, config.batch_size,
                                       seed=config.seed, repeat=True, vectorizer=vectorizer,
                                       color_augment=config.color_augment,
                                       style_words=style_words,
                                       skip=initial_epoch * steps * config.batch_size,
                                       bundles=bundles, bundle_share=config.bundle_share)
    return dataset, steps


def fit(gan, dataset, steps, config, initial_epoch, callbacks, strategy):
    """`gan.fit` from `initial_epoch` (`fit_across_workers` with several workers); a lost
    worker ends the run with what to do next."""
    if config.strategy != "multiworker":
        return gan.fit(dataset, epochs=config.epochs, initial_epoch=initial_epoch,
                       steps_per_epoch=steps, callbacks=callbacks,
                       verbose=progress_verbosity(config.verbose))
    try:
        fit_across_workers(gan, dataset, strategy, config.epochs, initial_epoch, steps, callbacks)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError, tf.errors.InternalError) as error:
        sys.exit(f"train: a worker stopped answering ({type(error).__name__}); start every "
                 "worker again with the same command: they resume from the chief's last "
                 "checkpoint")


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "train")


if __name__ == "__main__":
    console_main()
