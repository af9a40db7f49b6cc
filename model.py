"""Text encoder and `TextToImageGAN`, the trainable text-to-image model (losses in losses.py,
DiffAugment in augment.py).

Training follows DF-GAN: hinge loss over real-matched, real-mismatched (the
batch's sentences rolled by one) and fake pairs; the matching-aware gradient
penalty (MA-GP) on the real pair's image and sentence; two-timescale Adam; and
an exponential moving average (EMA) of the generator that is used for sampling.
The text encoder normally starts from a pretrained dual encoder (encoder.py) and
stays frozen, as in DF-GAN; when it is trainable it learns with the discriminator.
An XMC-GAN-style contrastive loss between the discriminator's image code and the
sentence teaches D (and a trainable text encoder) to tell concepts apart, and the
same loss on fake images makes the generator follow the text. FastGAN's parts (skip-layer
excitation in G, D's reconstruction decoders), DiffAugment colour and cutout, and MSGAN's
mode-seeking loss are switched on by constructor arguments (off by default, which keeps
models saved before them loading unchanged).
"""

import keras
import tensorflow as tf
from keras import layers, ops

from augment import random_color, random_cutout, random_translate
from distribute import ema_decay_at, replica_scale, update_moving_average
from tokenizer import make_text_vectorizer
from discriminator import Discriminator
from generator import Generator
from losses import (contrastive_loss, discriminator_hinge_loss, generator_hinge_loss,
                    matching_aware_gradient_penalty, mode_seeking_loss, reconstruction_loss)


@keras.saving.register_keras_serializable(package="adgan")
class TextEncoder(keras.Model):
    """Token ids [B, L] -> (words [B, L, 2H], sentence [B, 2H]) with a bidirectional LSTM.

    Args:
        vocabulary_size: number of token ids (0 = padding, 1 = unknown).
        embedding_dim: width of the token embedding.
        hidden_units: H, units of each LSTM direction; the sentence has 2H.
        sequence_length: L, tokens per text.
    """

    def __init__(self, vocabulary_size=1000, embedding_dim=128, hidden_units=128,
                 sequence_length=16, **kwargs):
        token_ids = keras.Input((sequence_length,), dtype="int64", name="token_ids")
        x = layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True,
                             name="embedding")(token_ids)
        # Unrolled: the sequence is short and fixed, and one prompt encodes in 0.7 ms
        # instead of 1.5 ms through a while loop (the numbers are the same).
        words, forward_h, _, backward_h, _ = layers.Bidirectional(
            layers.LSTM(hidden_units, return_sequences=True, return_state=True, unroll=True),
            name="bilstm")(x)
        sentence = layers.Concatenate(dtype="float32", name="sentence")([forward_h, backward_h])
        words = layers.Activation("linear", dtype="float32", name="words")(words)
        super().__init__(inputs=token_ids, outputs=[words, sentence], **kwargs)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_units = hidden_units
        self.sequence_length = sequence_length

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "vocabulary_size": self.vocabulary_size, "embedding_dim": self.embedding_dim,
                "hidden_units": self.hidden_units, "sequence_length": self.sequence_length}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# ----------------------------------------------------------------------------- the GAN

class TextConditionedGAN(keras.Model):
    """What every text-conditioned GAN here shares: the D/G variable split, encoding, sampling.

    Subclasses set `vectorizer`, `text_encoder`, `generator`, `ema_generator`,
    `discriminator`, `noise_dim`, `trackers` and the two optimizers (`compile`).
    """

    def get_compile_config(self):
        # compile() takes optimizer objects that a saved model does not need; re-compile after
        # loading to train again (the resume path restores optimizer slots from checkpoints).
        return None

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def d_variables(self):
        """What the D step trains: discriminator and text encoder."""
        return self.discriminator.trainable_variables + self.text_encoder.trainable_variables

    def build_optimizers(self):
        """Create optimizer slots now, so a checkpoint can be restored before training."""
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.d_variables)

    def encode(self, texts):
        """Raw strings [B] -> sentence vectors [B, 2H]."""
        return self.text_encoder(self.vectorizer(texts))[1]

    def text_inputs(self, token_ids, training=False):
        """(sentence [B, 2H], the generator's inputs after the noise: (sentence,), or with
        word attention (sentence, words [B, L, 2H], word mask [B, L], 1 = a token))."""
        words, sentence = self.text_encoder(token_ids, training=training)
        if not getattr(self, "word_attention", False):
            return sentence, (sentence,)
        # tf.identity drops the Keras mask the embedding attached (the mask is passed on
        # explicitly as the fourth input)
        return sentence, (sentence, tf.identity(words),
                          ops.cast(ops.greater(token_ids, 0), "float32"))

    def generate(self, texts, seed=0, noise=None, use_ema=True):
        """Draw one image per text: float32 [B, S, S, 3] in [-1, 1].

        `noise` [B, noise_dim] overrides `seed`; the same seed gives the same images.
        """
        texts = tf.constant(list(texts)) if not tf.is_tensor(texts) else texts
        if noise is None:
            noise = keras.random.normal((ops.shape(texts)[0], self.noise_dim), seed=seed)
        noise = ops.convert_to_tensor(noise, "float32")
        generator = self.ema_generator if use_ema else self.generator
        return generator([noise, *self.text_inputs(self.vectorizer(texts))[1]], training=False)

    def call(self, inputs, training=False):
        """(texts [B], noise [B, noise_dim]) -> images, so Keras can build and save the model."""
        texts, noise = inputs
        return self.ema_generator([noise, *self.text_inputs(self.vectorizer(texts))[1]],
                                  training=training)


@keras.saving.register_keras_serializable(package="adgan")
class TextToImageGAN(TextConditionedGAN):
    """DF-GAN text-to-image model: tokenizer, text encoder, generator (+EMA), discriminator.

    Args:
        vocabulary: list of tokens (ids 2.. in order; 0 = padding, 1 = unknown).
        image_size: image side in pixels.
        sequence_length: tokens per text.
        noise_dim: noise vector length.
        embedding_dim: token embedding width.
        text_hidden_units: LSTM units per direction (sentence length = 2x).
        generator_channels: generator channels at full resolution.
        discriminator_channels: discriminator channels at full resolution.
        affine_hidden_units: width of the generator's affine condition MLP.
        ema_decay: EMA decay of the sampling generator.
        gp_weight: MA-GP weight.
        gp_power: MA-GP exponent.
        gp_every: apply MA-GP every this many D steps, weighted by it (1 = every step).
        contrastive_weight: weight of the image-text contrastive loss (0 = pure DF-GAN).
        contrastive_temperature: its softmax temperature.
        augment_shift: largest random translation, as a fraction of the image side, of the
            images D sees (real and fake alike; DiffAugment); 0 = none.
        augment_color: DiffAugment colour (brightness, saturation, contrast) of D's images.
        augment_cutout: side of DiffAugment's cutout square, a fraction of the image side;
            0 = none.
        skip_excitation: FastGAN's skip-layer excitation in the generator.
        reconstruction_weight: weight of D's FastGAN reconstruction loss on real images
            (image_size >= 32); 0 = no decoders.
        mode_seeking_weight: weight of MSGAN's mode-seeking loss (the first half of the
            batch's texts drawn once more from other noise); 0 = none.
        word_attention: AttnGAN's word attention in the generator's blocks of side >= 16
            (generator.WordAttention), fed the text encoder's per-word features.
        seed: seed of the training noise and augmentation.

    Example:
    >>> gan = TextToImageGAN(["red", "dress"], image_size=16, generator_channels=4,
    ...                      discriminator_channels=4)
    >>> gan.generate(["red dress"], seed=1).shape
    (1, 16, 16, 3)
    """

    def __init__(self, vocabulary, image_size=64, sequence_length=16, noise_dim=100,
                 embedding_dim=128, text_hidden_units=128, generator_channels=32,
                 discriminator_channels=32, affine_hidden_units=256, ema_decay=0.999,
                 gp_weight=2.0, gp_power=6.0, gp_every=1, contrastive_weight=1.0,
                 contrastive_temperature=0.1, augment_shift=0.125, augment_color=False,
                 augment_cutout=0.0, skip_excitation=False, reconstruction_weight=0.0,
                 mode_seeking_weight=0.0, word_attention=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary = list(vocabulary)
        self.image_size = image_size
        self.sequence_length = sequence_length
        self.noise_dim = noise_dim
        self.embedding_dim = embedding_dim
        self.text_hidden_units = text_hidden_units
        self.generator_channels = generator_channels
        self.discriminator_channels = discriminator_channels
        self.affine_hidden_units = affine_hidden_units
        self.ema_decay = ema_decay
        self.gp_weight = gp_weight
        self.gp_power = gp_power
        self.gp_every = gp_every
        self.contrastive_weight = contrastive_weight
        self.contrastive_temperature = contrastive_temperature
        self.augment_shift = augment_shift
        self.augment_color = augment_color
        self.augment_cutout = augment_cutout
        self.skip_excitation = skip_excitation
        self.reconstruction_weight = reconstruction_weight
        self.mode_seeking_weight = mode_seeking_weight
        self.word_attention = word_attention
        self.seed = seed
        text_dim = 2 * text_hidden_units
        self.vectorizer = make_text_vectorizer(self.vocabulary, sequence_length)
        self.text_encoder = TextEncoder(len(self.vocabulary) + 2, embedding_dim,
                                        text_hidden_units, sequence_length, name="text_encoder")
        generator_args = dict(image_size=image_size, noise_dim=noise_dim, text_dim=text_dim,
                              base_channels=generator_channels,
                              hidden_units=affine_hidden_units,
                              skip_excitation=skip_excitation, word_attention=word_attention)
        self.generator = Generator(**generator_args, name="generator")
        self.ema_generator = Generator(**generator_args, name="ema_generator")
        self.ema_generator.trainable = False
        self.discriminator = Discriminator(image_size, text_dim, discriminator_channels,
                                           reconstruction=reconstruction_weight > 0,
                                           name="discriminator")
        self.noise_seed = keras.random.SeedGenerator(seed, name="noise_seed")
        self.augment_seed = keras.random.SeedGenerator(seed + 1, name="augment_seed")
        self.ema_generator.set_weights(self.generator.get_weights())
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("d_loss", "g_loss", "gp", "real_score", "fake_score",
                          "contrastive", "reconstruction", "mode_seeking")}
        self.built = True  # every sub-model above is already built

    def get_config(self):
        return {"name": self.name, "vocabulary": self.vocabulary,
                "image_size": self.image_size, "sequence_length": self.sequence_length,
                "noise_dim": self.noise_dim, "embedding_dim": self.embedding_dim,
                "text_hidden_units": self.text_hidden_units,
                "generator_channels": self.generator_channels,
                "discriminator_channels": self.discriminator_channels,
                "affine_hidden_units": self.affine_hidden_units, "ema_decay": self.ema_decay,
                "gp_weight": self.gp_weight, "gp_power": self.gp_power, "gp_every": self.gp_every,
                "contrastive_weight": self.contrastive_weight,
                "contrastive_temperature": self.contrastive_temperature,
                "augment_shift": self.augment_shift, "augment_color": self.augment_color,
                "augment_cutout": self.augment_cutout, "skip_excitation": self.skip_excitation,
                "reconstruction_weight": self.reconstruction_weight,
                "mode_seeking_weight": self.mode_seeking_weight,
                "word_attention": self.word_attention, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Set the optimizers (DF-GAN's two-timescale Adam by default).

        Under a `mixed_float16` policy each is wrapped in a `LossScaleOptimizer`.
        """
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(4e-4, beta_1=0.0, beta_2=0.9)
        if keras.config.dtype_policy().name == "mixed_float16":
            self.g_optimizer = keras.optimizers.LossScaleOptimizer(self.g_optimizer)
            self.d_optimizer = keras.optimizers.LossScaleOptimizer(self.d_optimizer)

    def _scaled(self, optimizer, loss):
        """Loss to differentiate: split across replicas, times the loss scale if any."""
        return optimizer.scale_loss(loss * replica_scale())

    def _real_pair(self, images, sentence):
        """D's features, its (16x16, 8x8) features (() without reconstruction) and match
        logits for the real pairs."""
        features, pyramid = self.discriminator.image_features(images, training=True)
        logits = self.discriminator.head([features, sentence], training=True)
        return features, pyramid or (), logits

    def _real_pair_with_penalty(self, images, sentence):
        """`_real_pair` plus the MA-GP of its logits, weighted for the lazy interval."""
        with tf.GradientTape() as gp_tape:
            gp_tape.watch([images, sentence])
            features, pyramid, logits = self._real_pair(images, sentence)
        image_grads, sentence_grads = gp_tape.gradient(logits, [images, sentence])
        gp = matching_aware_gradient_penalty(image_grads, sentence_grads,
                                             self.gp_weight * self.gp_every, self.gp_power)
        return features, pyramid, logits, gp

    def _augment(self, images):
        """DiffAugment of everything D sees (real and fake alike): translation, then colour
        and cutout where enabled."""
        images = random_translate(images, int(round(self.augment_shift * self.image_size)),
                                  self.augment_seed)
        if self.augment_color:
            images = random_color(images, self.augment_seed)
        return random_cutout(images, self.augment_cutout, self.augment_seed)

    def _reconstruction(self, images, pyramid):
        """FastGAN's D self-supervision on real `images` [B, S, S, 3]: redraw the whole image
        (at S/2) from the 8x8 features and one random quadrant (the same for the batch) from
        the matching 8x8 crop of the 16x16 features."""
        middle, low = pyramid
        whole = reconstruction_loss(self.discriminator.decode_whole(low, training=True), images)
        quadrant = keras.random.randint((2,), 0, 2, seed=self.augment_seed)  # (row, column)
        half = self.image_size // 2
        zero = ops.zeros((1,), "int32")
        crop = tf.slice(middle, ops.concatenate([zero, quadrant * 8, zero], 0), [-1, 8, 8, -1])
        target = tf.slice(images, ops.concatenate([zero, quadrant * half, zero], 0),
                          [-1, half, half, -1])
        part = reconstruction_loss(self.discriminator.decode_part(crop, training=True), target)
        return whole + part

    def _discriminator_step(self, token_ids, images, noise, concept_ids=None):
        """Hinge loss on real-matched, real-mismatched (sentences rolled by one) and fake
        pairs, plus MA-GP, the contrastive loss (renderings of one concept are all
        positives) and the reconstruction loss; trains D and a trainable text encoder.

        Returns (the generator's text inputs (`text_inputs`), the step's values for the
        trackers).
        """
        with tf.GradientTape() as tape:
            sentence, text = self.text_inputs(token_ids, training=True)
            text = tuple(ops.stop_gradient(t) for t in text)
            fake = self.generator([noise, *text], training=True)
            # Lazy regularisation (StyleGAN2): the penalty every `gp_every` D steps, scaled
            # up by that interval, saves most of its double back-propagation.
            if self.gp_every == 1:
                real_features, pyramid, real_logits, gp = self._real_pair_with_penalty(
                    images, sentence)
            else:
                real_features, pyramid, real_logits, gp = tf.cond(
                    ops.equal(self.d_optimizer.iterations % self.gp_every, 0),
                    lambda: self._real_pair_with_penalty(images, sentence),
                    lambda: self._real_pair(images, sentence) + (ops.zeros(()),))
            mismatched_logits = self.discriminator.head(
                [ops.roll(real_features, 1, axis=0), sentence], training=True)
            fake_features, _ = self.discriminator.image_features(
                self._augment(ops.stop_gradient(fake)), training=True)
            fake_logits = self.discriminator.head([fake_features, sentence], training=True)
            real_contrastive = contrastive_loss(self.discriminator.projector(real_features),
                                                sentence, self.contrastive_temperature,
                                                concept_ids)
            reconstruction = (self._reconstruction(images, pyramid) if pyramid
                              else ops.zeros(()))
            d_loss = (discriminator_hinge_loss(real_logits, mismatched_logits, fake_logits) + gp
                      + self.contrastive_weight * real_contrastive
                      + self.reconstruction_weight * reconstruction)
            scaled_loss = self._scaled(self.d_optimizer, d_loss)
        d_vars = self.d_variables
        self.d_optimizer.apply(tape.gradient(scaled_loss, d_vars), d_vars)
        return text, {"d_loss": d_loss, "gp": gp, "real_score": ops.mean(real_logits),
                          "contrastive": real_contrastive, "reconstruction": reconstruction}

    def _generator_step(self, text, noise, concept_ids=None):
        """Fool D on (fake, its sentence), match the sentence in D's image code and, with
        mode seeking, draw the first half of the texts again from other noise and reward the
        difference; the text encoder is held fixed (`text`: the generator's text inputs,
        sentence first). Updates G and its EMA; returns the step's values."""
        sentence = text[0]
        batch = ops.shape(noise)[0]
        half = noise.shape[0] // 2 if self.mode_seeking_weight > 0 else 0
        if half:
            other_noise = keras.random.normal((half, self.noise_dim), seed=self.noise_seed)
            noises = ops.concatenate([noise, other_noise], axis=0)
            texts = tuple(ops.concatenate([t, t[:half]], axis=0) for t in text)
        else:
            noises, texts = noise, text
        with tf.GradientTape() as tape:
            drawn = self.generator([noises, *texts], training=True)
            fake = drawn[:batch]
            fake_features, _ = self.discriminator.image_features(self._augment(fake),
                                                                 training=True)
            fake_logits = self.discriminator.head([fake_features, sentence], training=True)
            fake_contrastive = contrastive_loss(self.discriminator.projector(fake_features),
                                                sentence, self.contrastive_temperature,
                                                concept_ids)
            mode_seeking = (mode_seeking_loss(fake[:half], drawn[batch:], noise[:half],
                                              other_noise) if half else ops.zeros(()))
            g_loss = (generator_hinge_loss(fake_logits)
                      + self.contrastive_weight * fake_contrastive
                      + self.mode_seeking_weight * mode_seeking)
            scaled_loss = self._scaled(self.g_optimizer, g_loss)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(scaled_loss, g_vars), g_vars)
        update_moving_average(self.ema_generator.weights, self.generator.weights,
                              ema_decay_at(self.g_optimizer.iterations, self.ema_decay))
        return {"g_loss": g_loss, "fake_score": ops.mean(fake_logits),
                "mode_seeking": mode_seeking}

    def train_step(self, data):
        """One D step and one G step on {"images", "text" or "token_ids"[, "concept_id"]}."""
        token_ids = data["token_ids"] if "token_ids" in data else self.vectorizer(data["text"])
        noise = keras.random.normal((ops.shape(data["images"])[0], self.noise_dim),
                                    seed=self.noise_seed)
        concept_ids = data.get("concept_id")
        text, d_values = self._discriminator_step(token_ids, self._augment(data["images"]),
                                                  noise, concept_ids)
        values = {**d_values, **self._generator_step(text, noise, concept_ids)}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}
