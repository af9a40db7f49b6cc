"""Discriminator-gated sampling: generate -> the discriminator judges -> generate again.

For each prompt, candidates k = 0, 1, 2, ... are drawn (noise keyed by the
prompt's seed and k, so results never depend on batching) and judged by the
discriminator's image-text head. The first candidate that passes the gate is
returned; if none of the `budget` candidates passes, the best-scoring one is
returned with `accepted = False`.

The gate, its score and its acceptance rules (DRS or a fixed threshold) are in gate.py;
its calibration, `adgan-calibrate`, in calibrate.py.
"""

import numpy as np
import tensorflow as tf

from adgan.data.colors import recolor_drawings
from adgan.data.styles import vary_style
from adgan.drawing.composition import MAX_PARTS, join_results, split_requests
from adgan.drawing.gate import Gate
from adgan.helpers import decoded
from adgan.upsampling.upsampler import enlarge
from data_loader import to_float_tensor, to_uint8_tensor

DEFAULT_MAX_TRIES = 8
CHUNK = 4  # candidates per prompt drawn in one batch


def candidate_draws(seeds, indices, noise_dim):
    """Noise [N, noise_dim] and a uniform [N] for candidate `indices` [N] of `seeds` [N].

    Stateless: the same (seed, index) gives the same draw on any batch layout.
    """
    keys = tf.stack([tf.cast(seeds, tf.int64), 2 * tf.cast(indices, tf.int64)], axis=1)

    def draw(key):
        return (tf.random.stateless_normal([noise_dim], seed=key),
                tf.random.stateless_uniform([], seed=key + tf.constant([0, 1], tf.int64)))

    return tf.map_fn(draw, keys, fn_output_signature=(tf.float32, tf.float32))


def gated_sample(text_inputs, seeds, budgets, draw, judge, gate, noise_dim, image_size,
                 chunk=CHUNK):
    """Draw up to `budgets[i]` candidates per prompt and keep the first that passes `gate`.

    Args:
        text_inputs: the generator's text inputs, a tuple whose first is the sentence
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
    batch = tf.shape(text_inputs[0])[0]
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
        repeated = tuple(tf.repeat(t, chunk, axis=0) for t in text_inputs)
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


def recolored(images, colors):
    """Float drawings [N, S, S, 3] in [-1, 1] given `colors` [N] (`colors.recolor_drawings`,
    on the uint8 picture a drawing is served as; None: as drawn)."""
    if colors is None:
        return images
    return to_float_tensor(recolor_drawings(to_uint8_tensor(images), colors))


def gated_generate(gan, token_ids, seeds, budgets, gate, chunk=CHUNK, colors=None):
    """`gated_sample` with a `TextToImageGAN`'s EMA generator and discriminator; D judges a
    draw against the prompt's own sentence (G may draw from a moved one: `text_inputs`), in
    the asked colour (`colors` [B]: `colors.SHOP_COLORS` numbers, -1 as drawn), as it will
    be served (`finished` gives it the colour at the size served)."""
    sentence, text_inputs = gan.text_inputs(token_ids)
    if colors is None:
        colors = -tf.ones_like(seeds, tf.int32)
    return gated_sample(
        (sentence, tf.cast(colors, tf.int32), *text_inputs), seeds, budgets,
        draw=lambda noise, t: gan.ema_generator([noise, *t[2:]], training=False),
        judge=lambda images, t: gan.discriminator([recolored(images, t[1]), t[0]],
                                                  training=False)[:, 0],
        gate=gate, noise_dim=gan.noise_dim, image_size=gan.image_size, chunk=chunk)


def ungated_generate(gan, token_ids, seeds):
    """Float images [B, H, W, 3]: each prompt's first candidate (index 0), not judged."""
    text_inputs = gan.text_inputs(token_ids)[1]
    noise, _ = candidate_draws(seeds, tf.zeros_like(seeds), gan.noise_dim)
    return gan.ema_generator([noise, *text_inputs], training=False)


def judge_score(gan, token_ids, images, gate):
    """Score in [0, 1] of float images [B, H, W, 3] in [-1, 1] against their token ids."""
    sentence = gan.text_encoder(token_ids, training=False)[1]
    logits = gan.discriminator([images, sentence], training=False)[:, 0]
    return tf.sigmoid(gate.log_odds(tf.cast(logits, tf.float32)))


def drawn_requests(prompts, seeds, budgets, style_words, splitter=None):
    """(prompts, seeds, budgets, layout) to draw for prompts: each styled by its seed
    (`styles.vary_style`) and, with a `splitter`, split into the products it names
    (`composition.split_requests`; layout None without one)."""
    prompts = vary_style(prompts, seeds, style_words)
    if splitter is None:
        return prompts, seeds, budgets, None
    return split_requests(splitter, prompts, seeds, budgets)


def read_requests(reader, prompts):
    """(the texts to draw, what was read (`understanding.PromptReader`'s outputs) or None):
    the prompts themselves without a `reader`."""
    if reader is None:
        return prompts, None
    reading = reader(prompts)
    return reading["text"], reading


def judged_texts(reader, prompts):
    """The texts a picture of each prompt is judged against: as read where the reader reads
    something drawable, else the prompt (string tensors)."""
    texts, reading = read_requests(reader, prompts)
    return texts if reading is None else tf.where(reading["drawable"], texts, prompts)


def drawn_colors(reading, layout):
    """The `colors.SHOP_COLORS` colour of each drawn row (-1: as drawn): each part's own
    (`layout` from `drawn_requests`), or the first part's when prompts are not split;
    None without a reading."""
    if reading is None:
        return None
    if layout is None:
        return reading["colors"][:, 0]
    index = tf.minimum(layout["index"], MAX_PARTS - 1)
    return tf.gather_nd(reading["colors"], tf.stack([tf.cast(layout["row"], tf.int32), index], 1))


def finished(out, size, upsampler=None, layout=None, colors=None):
    """Drawn rows {"images" float, ...} -> the prompts': images quantised, enlarged to `size`
    (`upsampler.enlarge`), given the asked `colors` [rows] (`colors.recolor_drawings`, at
    the size served, so the up-sampler enlarges a drawing as it was drawn; None: as drawn)
    and, with a `layout`, composed (`composition.join_results`)."""
    images = enlarge(to_uint8_tensor(out["images"]), size, upsampler)
    out = {**out, "images": images if colors is None else recolor_drawings(images, colors)}
    return out if layout is None else join_results(out, layout)


def understood(reading):
    """What a result says of its prompts' reading: {"drawn_as", "ignored"} ({} without)."""
    return {} if reading is None else {"drawn_as": reading["drawn_as"],
                                       "ignored": reading["ignored"]}


class GatedSampler:
    """Gated generation from a loaded `TextToImageGAN` (one traced graph a size, reused).

    `sampler(prompts, seeds, budgets, size=None)` returns numpy {"images" uint8, "score",
    "accepted", "tries"}, the same numbers the exported SavedModel gives. Prompts
    go through in batches of `batch_size` (each row's draws depend only on its seed).
    With `style_words` (the run's), a prompt that names no style is drawn in the style its
    seed picks (`styles.vary_style`), as the SavedModel does; the gate judges the
    candidates against that styled prompt. With a `splitter` (`composition.BundleSplitter`),
    a prompt that names two or three products is drawn product by product, each gated,
    and the drawings composed side by side at the output size (`size`, one of
    `upsampler.output_sizes`; the model's own by default, 2x and 4x enlarged by
    `upsampler` or Lanczos). With a `reader` (`understanding.PromptReader`), each prompt is
    first read as a shop wrote it: its product(s) and style drawn, its colour given to the
    drawing, and the result says so ("drawn_as", "ignored" besides the above).
    """

    def __init__(self, gan, gate, batch_size=256, style_words=None, splitter=None,
                 upsampler=None, reader=None):
        self.gan = gan
        self.gate = gate
        self.batch_size = batch_size
        self.style_words = dict(style_words or {})
        self.splitter = splitter
        self.upsampler = upsampler
        self.reader = reader
        self._run = tf.function(self._sample, reduce_retracing=True)

    def _sample(self, prompts, seeds, budgets, size):
        texts, reading = read_requests(self.reader, prompts)
        texts, seeds, budgets, layout = drawn_requests(texts, seeds, budgets, self.style_words,
                                                       self.splitter)
        colors = drawn_colors(reading, layout)
        out = gated_generate(self.gan, self.gan.vectorizer(texts), seeds, budgets, self.gate,
                             colors=colors)
        return {**finished(out, size, self.upsampler, layout, colors), **understood(reading)}

    def __call__(self, prompts, seeds, budgets, size=None):
        prompts, seeds, budgets = list(prompts), list(seeds), list(budgets)
        size = int(size or self.gan.image_size)
        parts = []
        for start in range(0, len(prompts), self.batch_size):
            end = start + self.batch_size
            out = self._run(tf.constant(prompts[start:end]),
                            tf.constant(seeds[start:end], tf.int64),
                            tf.constant(budgets[start:end], tf.int32), size)
            parts.append({name: decoded(value) if value.dtype == tf.string else value.numpy()
                          for name, value in out.items()})
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def generate_images(gan, prompts, per_prompt, seed=0, gate=None, max_tries=1, style_words=None,
                    splitter=None, size=None, upsampler=None, reader=None):
    """Gated images of each prompt; image k of every prompt uses seed `seed + k`.

    Returns numpy {"images": uint8 [P, K, H, W, 3], "score", "accepted", "tries": [P, K]}.
    Without a `gate`, the first candidate is kept, scored by sigmoid(D's raw logit).
    With `style_words`, the draws of a prompt that names no style vary its style; with a
    `splitter`, bundle prompts are drawn product by product; `size`, `upsampler`: the
    output size and how it is reached; with a `reader`, prompts are read as shops write
    them (`GatedSampler`).
    """
    sampler = GatedSampler(gan, gate or Gate.ungated(), style_words=style_words,
                           splitter=splitter, upsampler=upsampler, reader=reader)
    return draw_prompts(sampler, prompts, per_prompt, seed, max_tries, size)


def draw_prompts(sampler, prompts, per_prompt, seed=0, max_tries=1, size=None):
    """`generate_images` with a `GatedSampler` already made: several calls share its traced
    graph (a few seconds a trace). Image k of every prompt uses seed `seed + k`."""
    repeated = [p for p in prompts for _ in range(per_prompt)]
    seeds = [seed + k for _ in prompts for k in range(per_prompt)]
    out = sampler(repeated, seeds, [max_tries] * len(repeated), size)
    return {name: value.reshape(len(prompts), per_prompt, *value.shape[1:])
            for name, value in out.items()}
