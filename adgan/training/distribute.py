"""Where training runs: the tf.distribute strategy, its chief, and the precision policy.

With `--strategy multiworker` every machine runs the same `python train.py` with its
own `TF_CONFIG` (tf.distribute.MultiWorkerMirroredStrategy) and the same `--out-dir`
on a shared filesystem. The chief (task "chief", or worker 0 when the cluster names
none) owns the run folder: it alone writes there; the others read its checkpoints
to resume and write their own files to a private temporary folder.
"""

import hashlib
import json
import os
import tempfile

import keras
from keras import ops
import tensorflow as tf


def make_strategy(name):
    """The tf.distribute strategy for `--strategy`.

    `mirrored` uses every GPU, or every logical CPU device when there is no GPU.
    Create it before any other TensorFlow op runs: multi-worker collectives can only
    be configured at program start.
    """
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("--strategy multiworker needs TF_CONFIG (the cluster and this "
                             "worker's task); see docs/training.md, several machines")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON ({error})") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def worker_count(strategy):
    """How many machines train together (1 unless multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return max(1, sum(len(tasks) for kind, tasks in spec.items() if kind in ("chief", "worker")))


def is_chief(strategy):
    """True on the machine that owns the run folder (always true on one machine)."""
    return worker_count(strategy) == 1 or bool(strategy.extended.should_checkpoint)


def worker_out_dir(out_dir, strategy):
    """(the folder this worker writes to, whether it is the chief): a worker other than the
    chief writes into a private temporary folder instead of the run folder (it still reads
    the run's checkpoints); the caller removes that folder at the end."""
    if is_chief(strategy):
        return out_dir, True
    private = tempfile.mkdtemp(prefix="adgan-worker-")
    print(f"train: not the chief: this worker writes nothing to {out_dir} "
          f"(its scratch folder {private} is removed at the end)")
    return private, False


# CPU flags with native bfloat16 arithmetic: AMX-BF16 (Intel Sapphire Rapids and later) and
# AVX512-BF16 (AMD Zen 4, Intel Cooper Lake). Measured, the `full` train step: 16.8 -> 29.7
# img/s on a Xeon with AMX, 23.8 -> 32.2 on an EPYC with avx512_bf16; on an AVX2-only EPYC
# bfloat16 is emulated and 11x slower (7.1 -> 0.64), so `auto` never picks it there.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_has_bf16(cpuinfo="/proc/cpuinfo"):
    """True when the CPU advertises native bfloat16 arithmetic (`BF16_FLAGS`)."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            return any(line.startswith("flags") and set(BF16_FLAGS) & set(line.split())
                       for line in f)
    except OSError:
        return False


def policy_for(precision, mixed_precision=False, gpu=None, bf16=None):
    """The Keras dtype policy of `--precision` (see `TrainConfig.precision`).

    auto: mixed_float16 on a GPU, mixed_bfloat16 on a CPU with AMX-BF16 or AVX512-BF16
    (`cpu_has_bf16`), float32 elsewhere.
    The older `--mixed-precision` flag means float16 on a GPU and bfloat16 on a CPU.
    """
    gpu = bool(tf.config.list_physical_devices("GPU")) if gpu is None else gpu
    if mixed_precision and precision in ("auto", "float32"):
        precision = "float16" if gpu else "bfloat16"
    if precision == "auto":
        bf16 = cpu_has_bf16() if bf16 is None else bf16
        precision = "float16" if gpu else "bfloat16" if bf16 else "float32"
    return "float32" if precision == "float32" else f"mixed_{precision}"


def set_precision(precision, mixed_precision=False):
    """Set the global dtype policy for `precision`; returns its name."""
    policy = policy_for(precision, mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def fit_across_workers(model, dataset, strategy, epochs, initial_epoch, steps_per_epoch,
                       callbacks=()):
    """`model.fit` for MultiWorkerMirroredStrategy, whose Keras 3 `fit` fails on distributed
    batches (keras-team/keras#20585): the same `train_step`, run by `strategy.run` in a
    `tf.function` (unless the model runs eagerly), with the callbacks' epoch and batch
    hooks. `dataset` must repeat (every worker takes exactly `steps_per_epoch` batches an
    epoch, or the collectives would wait).
    Prints one line an epoch on the chief."""
    batches = iter(strategy.experimental_distribute_dataset(dataset))
    hooks = keras.callbacks.CallbackList(list(callbacks), model=model, epochs=epochs,
                                         steps=steps_per_epoch)

    def train_step(batch):
        logs = strategy.run(model.train_step, args=(batch,))
        return {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                for name, value in logs.items()}

    if not model.run_eagerly:
        train_step = tf.function(train_step)

    hooks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        hooks.on_epoch_begin(epoch)
        logs = {}
        for step in range(steps_per_epoch):
            hooks.on_train_batch_begin(step)
            logs = {name: float(value) for name, value in train_step(next(batches)).items()}
            hooks.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        hooks.on_epoch_end(epoch, logs)
        if is_chief(strategy):
            print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(
                f"{name}: {value:.4f}" for name, value in logs.items()), flush=True)
        if model.stop_training:
            break
    hooks.on_train_end()


def weights_fingerprint(model):
    """A short hash of every weight's bytes: equal on all workers of a healthy run."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------- replicas and EMA


def ema_decay_at(step, decay):
    """EMA decay with warm-up, min(decay, (1 + step) / (10 + step)), so early samples track G."""
    step = ops.cast(step, "float32")
    return ops.minimum(decay, (1.0 + step) / (10.0 + step))


def update_moving_average(average_vars, model_vars, decay):
    """average = decay * average + (1 - decay) * model, safe inside a distribution strategy."""
    def update(_strategy=None):
        for average, value in zip(average_vars, model_vars):
            average.assign(decay * average + (1.0 - decay) * value)

    context = tf.distribute.get_replica_context()
    if tf.distribute.has_strategy() and context is not None:
        context.merge_call(update)  # replicas hold identical weights; update once
    else:
        update()


def replica_scale():
    """1 / replicas: per-replica losses are summed when gradients are all-reduced."""
    return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync
