"""Discriminator-gated sampling: generate -> the discriminator judges -> generate again.

For each prompt, candidates k = 0, 1, 2, ... are drawn (noise keyed by the
prompt's seed and k, so results never depend on batching) and judged by the
discriminator's image-text head. The first candidate that passes the gate is
returned; if none of the `budget` candidates passes, the best-scoring one is
returned with `accepted = False`.

A gate is calibrated once after training (`calibrate`, run on a run folder by
`runs.calibrate_run`): a logistic fit of D's logit on real training pairs vs
EMA-generator fakes turns the logit into a score, P(real match), in [0, 1]. Two
acceptance rules use it:

- DRS (Azadi et al., 2019, discriminator rejection sampling): accept with
  probability sigmoid(F - shift), F = d - log(1 - exp(d - eps)), d = the
  candidate's log-odds minus the largest log-odds seen on calibration fakes;
  `shift` is set so that a target fraction `gamma` of calibration fakes passes.
- a fixed threshold `min_score` on the score.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from adgan.data.styles import vary_style
from adgan.drawing.composition import join_results, split_requests
from adgan.upsampling.upsampler import enlarge
from data_loader import to_float_tensor, to_uint8_tensor

DEFAULT_GAMMA = 0.5  # DRS target acceptance rate per candidate
DEFAULT_MAX_TRIES = 8
CHUNK = 4  # candidates per prompt drawn in one batch
DRS_EPSILON = 1e-6


# ----------------------------------------------------------------------------- the gate

@dataclasses.dataclass(frozen=True)
class Gate:
    """A calibrated gate: logit -> score, and the DRS or threshold acceptance rule.

    Args:
        slope, intercept: log-odds = slope * D's logit + intercept; score = sigmoid(log-odds).
        max_log_odds: the largest log-odds among calibration fakes (DRS's D_M).
        shift: DRS's gamma shift, set from the target acceptance rate.
        min_score: if set, accept when score >= min_score instead of by DRS.
    """

    slope: float
    intercept: float
    max_log_odds: float
    shift: float
    min_score: float = None

    @classmethod
    def from_calibration(cls, calibration, gamma=None, min_score=None):
        """The gate of a saved calibration, for a DRS target rate `gamma` or a `min_score`."""
        gamma = calibration["gamma"] if gamma is None else gamma
        shift = drs_shift(np.asarray(calibration["fake_log_odds"]),
                          calibration["max_log_odds"], gamma)
        return cls(calibration["slope"], calibration["intercept"],
                   calibration["max_log_odds"], shift, min_score)

    @classmethod
    def ungated(cls):
        """No gate: the score is sigmoid(D's raw logit) and every candidate passes, so the
        first one is kept (for runs drawn with `--no-gate`)."""
        return cls(slope=1.0, intercept=0.0, max_log_odds=0.0, shift=0.0, min_score=0.0)

    def log_odds(self, logits):
        """D's logits -> calibrated log-odds of a real match."""
        return self.slope * logits + self.intercept

    def passes(self, log_odds, uniform):
        """bool: does a candidate with these log-odds pass, given its uniform draw?"""
        if self.min_score is not None:
            return tf.sigmoid(log_odds) >= self.min_score
        return uniform < tf.sigmoid(drs_log_ratio(log_odds, self.max_log_odds) - self.shift)


def drs_log_ratio(log_odds, max_log_odds):
    """DRS's F(x) = d - log(1 - exp(d - eps)), d = min(log-odds - D_M, 0) (works on np and tf)."""
    d = tf.minimum(tf.convert_to_tensor(log_odds, tf.float32) - max_log_odds, 0.0)
    return d - tf.math.log1p(-tf.exp(d - DRS_EPSILON))


def drs_shift(fake_log_odds, max_log_odds, gamma):
    """The shift whose mean acceptance probability over calibration fakes is `gamma`."""
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma (the DRS target acceptance rate) must be in (0, 1], got {gamma}")
    ratio = drs_log_ratio(fake_log_odds, max_log_odds).numpy()

    def rate(shift):
        return float(np.mean(1.0 / (1.0 + np.exp(np.clip(shift - ratio, -60, 60)))))

    low, high = -100.0, 100.0  # rate(low) ~ 1, rate(high) ~ 0; rate falls as shift grows
    for _ in range(100):
        middle = (low + high) / 2.0
        low, high = (middle, high) if rate(middle) > gamma else (low, middle)
    return (low + high) / 2.0


# ----------------------------------------------------------------------------- sampling

def candidate_draws(seeds, indices, noise_dim):
    """Noise [N, noise_dim] and a uniform [N] for candidate `indices` [N] of `seeds` [N].

    Stateless: the same (seed, index) gives the same draw on any batch layout.
    """
    keys = tf.stack([tf.cast(seeds, tf.int64), 2 * tf.cast(indices, tf.int64)], axis=1)

    def draw(key):
        return (tf.random.stateless_normal([noise_dim], seed=key),
                tf.random.stateless_uniform([], seed=key + tf.constant([0, 1], tf.int64)))

    return tf.map_fn(draw, keys, fn_output_signature=(tf.float32, tf.float32))


def gated_sample(sentences, seeds, budgets, draw, judge, gate, noise_dim, image_size,
                 chunk=CHUNK):
    """Draw up to `budgets[i]` candidates per prompt and keep the first that passes `gate`.

    Args:
        sentences: the generator's text inputs, a tuple whose first is the sentence
            vectors [B, T] (`TextConditionedGAN.text_inputs`).
        seeds: int64 [B], one per prompt.
        budgets: int32 [B] >= 1, the most candidates per prompt.
        draw: (noise [N, Z], text inputs, each repeated to N rows) -> float images
            [N, H, W, 3] in [-1, 1].
        judge: (images, text inputs) -> D's match logits [N].
        gate: a `Gate`.
        noise_dim, image_size: Z, and the side of the images.
    Returns:
        {"images" [B, H, W, 3] float, "score" [B] float32, "accepted" [B] bool,
         "tries" [B] int32 (candidates drawn for the prompt)}. Rows with no passing
        candidate hold the best-scoring one (the earliest on ties).
    """
    batch = tf.shape(sentences[0])[0]
    budgets = tf.cast(budgets, tf.int32)
    chunk = tf.minimum(chunk, tf.reduce_max(budgets))
    images = tf.zeros([batch, image_size, image_size, 3])
    scores = tf.fill([batch], -np.inf)
    accepted = tf.zeros([batch], tf.bool)
    chosen = tf.zeros([batch], tf.int32)

    def not_done(start, images, scores, accepted, chosen):
        return tf.reduce_any(~accepted & (start < budgets))

    def step(start, images, scores, accepted, chosen):
        indices = start + tf.range(chunk)                               # [C]
        draws_noise, uniform = candidate_draws(
            tf.repeat(seeds, chunk), tf.tile(indices, [batch]), noise_dim)  # [B*C, Z], [B*C]
        repeated = tuple(tf.repeat(t, chunk, axis=0) for t in sentences)
        candidates = tf.cast(draw(draws_noise, repeated), tf.float32)
        log_odds = gate.log_odds(tf.cast(judge(candidates, repeated), tf.float32))
        valid = indices[None, :] < budgets[:, None]                     # [B, C]
        passes = tf.reshape(gate.passes(log_odds, uniform), [batch, chunk]) & valid
        chunk_scores = tf.where(valid, tf.reshape(tf.sigmoid(log_odds), [batch, chunk]), -np.inf)
        open_rows = ~accepted
        any_pass = tf.reduce_any(passes, axis=1)
        first_pass = tf.argmax(tf.cast(passes, tf.int32), axis=1, output_type=tf.int32)
        pick = tf.where(any_pass, first_pass, tf.argmax(chunk_scores, axis=1, output_type=tf.int32))
        picked_score = tf.gather(chunk_scores, pick, batch_dims=1)
        take = open_rows & (any_pass | (picked_score > scores))
        candidates = tf.reshape(candidates, [batch, chunk, image_size, image_size, 3])
        picked = tf.gather(candidates, pick, batch_dims=1)
        images = tf.where(take[:, None, None, None], picked, images)
        scores = tf.where(take, picked_score, scores)
        chosen = tf.where(take, start + pick, chosen)
        return start + chunk, images, scores, tf.logical_or(accepted, open_rows & any_pass), chosen

    _, images, scores, accepted, chosen = tf.while_loop(
        not_done, step, (tf.constant(0), images, scores, accepted, chosen))
    return {"images": images, "score": scores, "accepted": accepted,
            "tries": tf.where(accepted, chosen + 1, budgets)}


def gated_generate(gan, token_ids, seeds, budgets, gate, chunk=CHUNK):
    """`gated_sample` with a `TextToImageGAN`'s EMA generator and discriminator."""
    text = gan.text_inputs(token_ids)[1]
    return gated_sample(
        text, seeds, budgets,
        draw=lambda noise, t: gan.ema_generator([noise, *t], training=False),
        judge=lambda images, t: gan.discriminator([images, t[0]], training=False)[:, 0],
        gate=gate, noise_dim=gan.noise_dim, image_size=gan.image_size, chunk=chunk)


def ungated_generate(gan, token_ids, seeds):
    """Float images [B, H, W, 3]: each prompt's first candidate (index 0), not judged."""
    text = gan.text_inputs(token_ids)[1]
    noise, _ = candidate_draws(seeds, tf.zeros_like(seeds), gan.noise_dim)
    return gan.ema_generator([noise, *text], training=False)


def judge_score(gan, token_ids, images, gate):
    """Score in [0, 1] of float images [B, H, W, 3] in [-1, 1] against their token ids."""
    sentences = gan.text_encoder(token_ids, training=False)[1]
    logits = gan.discriminator([images, sentences], training=False)[:, 0]
    return tf.sigmoid(gate.log_odds(tf.cast(logits, tf.float32)))


def drawn_requests(texts, seeds, budgets, style_words, splitter=None):
    """(texts, seeds, budgets, layout) to draw for prompts: each styled by its seed
    (`styles.vary_style`) and, with a `splitter`, split into the products it names
    (`composition.split_requests`; layout None without one)."""
    texts = vary_style(texts, seeds, style_words)
    if splitter is None:
        return texts, seeds, budgets, None
    return split_requests(splitter, texts, seeds, budgets)


def finished(out, size, upsampler=None, layout=None):
    """Drawn rows {"images" float, ...} -> the prompts': images quantised, enlarged to `size`
    (`upsampler.enlarge`) and, with a `layout`, composed (`composition.join_results`)."""
    out = {**out, "images": enlarge(to_uint8_tensor(out["images"]), size, upsampler)}
    return out if layout is None else join_results(out, layout)


class GatedSampler:
    """Gated generation from a loaded `TextToImageGAN` (one traced graph a size, reused).

    `sampler(texts, seeds, budgets, size=None)` returns numpy {"images" uint8, "score",
    "accepted", "tries"}, the same numbers the exported SavedModel gives. Prompts
    go through in batches of `batch_size` (each row's draws depend only on its seed).
    With `style_words` (the run's), a text that names no style is drawn in the style its
    seed picks (`styles.vary_style`), as the SavedModel does; the gate judges the
    candidates against that styled text. With a `splitter` (`composition.BundleSplitter`),
    a prompt that names two or three products is drawn product by product, each gated,
    and the drawings composed side by side at the output size (`size`, one of
    `upsampler.output_sizes`; the model's own by default, 2x and 4x enlarged by
    `upsampler` or Lanczos).
    """

    def __init__(self, gan, gate, batch_size=256, style_words=None, splitter=None,
                 upsampler=None):
        self.gan = gan
        self.gate = gate
        self.batch_size = batch_size
        self.style_words = dict(style_words or {})
        self.splitter = splitter
        self.upsampler = upsampler
        self._run = tf.function(self._sample, reduce_retracing=True)

    def _sample(self, texts, seeds, budgets, size):
        texts, seeds, budgets, layout = drawn_requests(texts, seeds, budgets, self.style_words,
                                                       self.splitter)
        out = gated_generate(self.gan, self.gan.vectorizer(texts), seeds, budgets, self.gate)
        return finished(out, size, self.upsampler, layout)

    def __call__(self, texts, seeds, budgets, size=None):
        texts, seeds, budgets = list(texts), list(seeds), list(budgets)
        size = int(size or self.gan.image_size)
        parts = []
        for start in range(0, len(texts), self.batch_size):
            end = start + self.batch_size
            out = self._run(tf.constant(texts[start:end]), tf.constant(seeds[start:end], tf.int64),
                            tf.constant(budgets[start:end], tf.int32), size)
            parts.append({name: value.numpy() for name, value in out.items()})
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def generate_images(gan, prompts, per_prompt, seed=0, gate=None, max_tries=1, style_words=None,
                    splitter=None, size=None, upsampler=None):
    """Gated images of each prompt; image k of every prompt uses seed `seed + k`.

    Returns numpy {"images": uint8 [P, K, H, W, 3], "score", "accepted", "tries": [P, K]}.
    Without a `gate`, the first candidate is kept, scored by sigmoid(D's raw logit).
    With `style_words`, the draws of a prompt that names no style vary its style; with a
    `splitter`, bundle prompts are drawn product by product; `size`, `upsampler`: the
    output size and how it is reached (`GatedSampler`).
    """
    sampler = GatedSampler(gan, gate or Gate.ungated(), style_words=style_words,
                           splitter=splitter, upsampler=upsampler)
    return draw_prompts(sampler, prompts, per_prompt, seed, max_tries, size)


def draw_prompts(sampler, prompts, per_prompt, seed=0, max_tries=1, size=None):
    """`generate_images` with a `GatedSampler` already made: several calls share its traced
    graph (a few seconds a trace). Image k of every prompt uses seed `seed + k`."""
    texts = [p for p in prompts for _ in range(per_prompt)]
    seeds = [seed + k for _ in prompts for k in range(per_prompt)]
    out = sampler(texts, seeds, [max_tries] * len(texts), size)
    return {name: value.reshape(len(prompts), per_prompt, *value.shape[1:])
            for name, value in out.items()}


# ----------------------------------------------------------------------------- calibration

def fit_logistic(real_logits, fake_logits, l2=1e-3, steps=100):
    """(slope, intercept) of P(real) = sigmoid(slope * logit + intercept), classes weighted equally.

    Newton's method on the weighted cross-entropy with a small L2 on the slope
    (which keeps it finite when the classes separate perfectly).
    """
    x = np.concatenate([real_logits, fake_logits]).astype(np.float64)
    y = np.concatenate([np.ones(len(real_logits)), np.zeros(len(fake_logits))])
    w = np.where(y == 1, 0.5 / len(real_logits), 0.5 / len(fake_logits))
    features = np.stack([x, np.ones_like(x)], axis=1)
    theta = np.zeros(2)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(features @ theta, -60, 60)))
        gradient = features.T @ (w * (p - y)) + l2 * np.array([theta[0], 0.0])
        hessian = (features * (w * p * (1 - p))[:, None]).T @ features + l2 * np.diag([1.0, 0.0])
        theta -= np.linalg.solve(hessian + 1e-9 * np.eye(2), gradient)
    return float(theta[0]), float(theta[1])


def auc(positive, negative):
    """Area under the ROC curve: P(a positive scores above a negative), ties count half."""
    positive, negative = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(np.mean((positive > negative) + 0.5 * (positive == negative)))


def calibrate(gan, texts, images, seed=0, gamma=DEFAULT_GAMMA):
    """Fit the gate on real pairs (texts, uint8 images [N, S, S, 3]) vs EMA fakes of the texts."""
    token_ids = gan.vectorizer(tf.constant(list(texts)))
    sentences, text = gan.text_inputs(token_ids)
    real = to_float_tensor(images)
    noise, _ = candidate_draws(tf.fill([len(texts)], tf.constant(seed, tf.int64)),
                               tf.range(len(texts), dtype=tf.int64), gan.noise_dim)
    fake = gan.ema_generator([noise, *text], training=False)
    real_logits = gan.discriminator([real, sentences], training=False)[:, 0].numpy()
    fake_logits = gan.discriminator([fake, sentences], training=False)[:, 0].numpy()
    slope, intercept = fit_logistic(real_logits, fake_logits)
    fake_log_odds = slope * fake_logits + intercept
    real_scores = 1.0 / (1.0 + np.exp(-(slope * real_logits + intercept)))
    fake_scores = 1.0 / (1.0 + np.exp(-fake_log_odds))
    max_log_odds = float(fake_log_odds.max())
    return {"pairs": len(texts), "slope": slope, "intercept": intercept,
            "max_log_odds": max_log_odds, "gamma": gamma,
            "shift": drs_shift(fake_log_odds, max_log_odds, gamma),
            "auc_real_vs_fake": auc(real_logits, fake_logits),
            "real_score_mean": float(real_scores.mean()),
            "fake_score_mean": float(fake_scores.mean()),
            "real_logit_mean": float(real_logits.mean()),
            "fake_logit_mean": float(fake_logits.mean()),
            "fake_log_odds": [round(float(v), 5) for v in fake_log_odds]}


def describe(calibration):
    """One line about a calibration, for logs."""
    line = (f"calibrated on {calibration['pairs']} {calibration['split']} pairs: "
            f"real-vs-fake AUC {calibration['auc_real_vs_fake']:.2f}, mean score real "
            f"{calibration['real_score_mean']:.2f} / fake {calibration['fake_score_mean']:.2f}")
    if "held_out" in calibration:
        line += f"; held-out AUC {calibration['held_out']['auc_real_vs_fake']:.2f}"
    return line
