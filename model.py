"""`TextToImageGAN`, the trainable text-to-image model (the LSTM text encoder in
tokenizer.py, losses in losses.py, DiffAugment in augment.py).

Training follows DF-GAN: hinge loss over real-matched, real-mismatched (the batch's
sentences rolled by one) and fake pairs; the matching-aware gradient penalty (MA-GP) on
the real pair; two-timescale Adam; an EMA of the generator for sampling. The text encoder
starts from a pretrained dual encoder (encoder.py), normally frozen as in DF-GAN. An
XMC-GAN contrastive loss between D's image code and the sentence teaches D to tell
concepts apart and G to follow the text. FastGAN's parts, DiffAugment colour and cutout,
MSGAN's mode seeking and instance conditioning (exemplars.py) are switched on by
constructor arguments (off by default: models saved before them load unchanged).
"""

import inspect

import keras
import tensorflow as tf
from keras import ops

from adgan.text.tokenizer import TextEncoder, make_text_vectorizer  # noqa: F401 (re-exported)
from adgan.training.augment import random_color, random_cutout, random_translate
from adgan.training.distribute import ema_decay_at, replica_scale, update_moving_average
from adgan.training.exemplars import ExemplarBank, ignored_token_sequences, without_sequences
from adgan.training.losses import (contrastive_loss, discriminator_hinge_loss,
                                   generator_hinge_loss, matching_aware_gradient_penalty,
                                   mode_seeking_loss, reconstruction_loss, shape_loss)
from discriminator import Discriminator
from generator import Generator, pick_exemplar


# ----------------------------------------------------------------------------- the GAN

class TextConditionedGAN(keras.Model):
    """What every text-conditioned GAN here shares: the D/G variable split, encoding, sampling.

    Subclasses set `vectorizer`, `text_encoder`, `generator`, `ema_generator`,
    `discriminator`, `noise_dim`, `noise_seed`, `trackers` and the two optimizers
    (`compile`).
    """

    # What a model conditions on beyond the sentence: `TextToImageGAN` sets both from its
    # settings (its saved config); a subclass without them (`BaselineGAN`) keeps these.
    word_attention = False
    exemplar_size = 0

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

    def networks(self):
        """{name: network} of what training learns (what `copy_model_weights` copies)."""
        found = {"text_encoder": self.text_encoder, "generator": self.generator,
                 "ema_generator": self.ema_generator, "discriminator": self.discriminator}
        if self.exemplar_size:
            found["exemplar_bank"] = self.exemplar_bank
        return found

    def seed_generators(self):
        """The random streams whose state a resume restores (training/checkpoints.py)."""
        return [self.noise_seed]

    def encode(self, prompts):
        """Raw strings [B] -> sentence vectors [B, 2H]."""
        return self.text_encoder(self.vectorizer(prompts))[1]

    def text_inputs(self, token_ids, training=False):
        """(sentence [B, 2H], the generator's inputs after the noise: (the sentence it draws
        from,), then with word attention words [B, L, 2H] and word mask [B, L] (1 = a
        token), then with instance conditioning the retrieved candidate drawings
        [B, M, s, s, 3] and their mask [B, M] (`exemplars.ExemplarBank.lookup`, which
        also moves the drawn sentence of a prompt found by a Chinese name or a term); in
        training none: `_training_exemplars` adds the training candidates)."""
        words, sentence = self.text_encoder(token_ids, training=training)
        drawn, inputs = sentence, ()
        if self.word_attention:
            # tf.identity drops the Keras mask of the embedding (the mask is the next input)
            inputs += (tf.identity(words), ops.cast(ops.greater(token_ids, 0), "float32"))
        if self.exemplar_size and not training:  # (training's: `_training_exemplars`)
            # matched as written and without its colour and style words
            plain = self.text_encoder(without_sequences(token_ids, ignored_token_sequences(
                self.vectorizer, self.exemplar_ignored_words)))[1]
            drawn, exemplars = self.exemplar_bank.lookup(sentence, plain)
            inputs += tuple(exemplars)
        return sentence, (drawn, *inputs)

    def generate(self, prompts, seed=0, noise=None, use_ema=True):
        """Draw one image per prompt: float32 [B, S, S, 3] in [-1, 1].

        `noise` [B, noise_dim] overrides `seed`; the same seed gives the same images.
        """
        prompts = tf.constant(list(prompts)) if not tf.is_tensor(prompts) else prompts
        if noise is None:
            noise = keras.random.normal((ops.shape(prompts)[0], self.noise_dim), seed=seed)
        noise = ops.convert_to_tensor(noise, "float32")
        generator = self.ema_generator if use_ema else self.generator
        return generator([noise, *self.text_inputs(self.vectorizer(prompts))[1]], training=False)

    def call(self, inputs, training=False):
        """(prompts [B], noise [B, noise_dim]) -> images, so Keras can build and save the model."""
        prompts, noise = inputs
        return self.ema_generator([noise, *self.text_inputs(self.vectorizer(prompts))[1]],
                                  training=training)


@keras.saving.register_keras_serializable(package="adgan")
class TextToImageGAN(TextConditionedGAN):
    """DF-GAN text-to-image model: tokenizer, text encoder, generator (+EMA), discriminator.

    Args:
        vocabulary: list of tokens (ids 2.. in order; 0 = padding, 1 = unknown).
        image_size, sequence_length: image side in pixels, tokens per text.
        noise_dim, embedding_dim: noise vector length, token embedding width.
        text_hidden_units: LSTM units per direction (sentence length = 2x).
        generator_channels, discriminator_channels: G's and D's channels at full resolution.
        affine_hidden_units: width of the generator's affine condition MLP.
        ema_decay: EMA decay of the sampling generator.
        gp_weight, gp_power, gp_every: MA-GP weight and exponent; apply it every this many
            D steps, weighted by it (1 = every step).
        contrastive_weight, contrastive_temperature: the image-text contrastive loss's
            weight (0 = pure DF-GAN) and softmax temperature.
        augment_shift: largest random translation, as a fraction of the image side, of the
            images D sees (real and fake alike; DiffAugment); 0 = none.
        augment_color: DiffAugment colour (brightness, saturation, contrast) of D's images.
        augment_cutout: DiffAugment's cutout square's side / the image side; 0 = none.
        skip_excitation: FastGAN's skip-layer excitation in the generator.
        reconstruction_weight: weight of D's FastGAN reconstruction loss on real images
            (image_size >= 32); 0 = no decoders.
        mode_seeking_weight: MSGAN's mode-seeking loss (the first half of the batch's prompts
            drawn once more from other noise); 0 = none.
        word_attention: AttnGAN's word attention in the generator's blocks of side >= 16
            (generator.WordAttention), fed the text encoder's per-word features.
        generator_min_channels: the fewest channels of a generator block (0 = none).
        exemplar_size: instance conditioning (exemplars.py) with thumbnails of this side;
            0 = none. `exemplar_products`, `exemplar_slots`, `exemplar_keys` size its
            `ExemplarBank` (products x styles, keys; 0 keys = the names), `exemplar_threshold`
            is its least cosine, `exemplar_shape_weight` G's shape term's weight (losses.py),
            `exemplar_ignored_words` words retrieval also drops (`exemplars.ignored_words`).
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
                 mode_seeking_weight=0.0, word_attention=False, generator_min_channels=0,
                 exemplar_size=0, exemplar_products=0, exemplar_slots=0, exemplar_keys=0,
                 exemplar_threshold=0.8, exemplar_shape_weight=0.0,
                 exemplar_ignored_words=None, seed=0, **kwargs):
        settings = dict(locals())  # the arguments, before anything else is named here
        super().__init__(**kwargs)
        self.vocabulary = list(vocabulary)
        for name in self.SETTINGS:  # every setting an attribute of its own name
            setattr(self, name, settings[name])
        text_dim = 2 * text_hidden_units
        self.vectorizer = make_text_vectorizer(self.vocabulary, sequence_length)
        self.text_encoder = TextEncoder(len(self.vocabulary) + 2, embedding_dim,
                                        text_hidden_units, sequence_length, name="text_encoder")
        generator_args = dict(image_size=image_size, noise_dim=noise_dim, text_dim=text_dim,
                              base_channels=generator_channels,
                              hidden_units=affine_hidden_units,
                              skip_excitation=skip_excitation, word_attention=word_attention,
                              min_channels=generator_min_channels,
                              exemplar_slots=exemplar_slots if exemplar_size else 0,
                              exemplar_size=exemplar_size or 16)
        self.generator = Generator(**generator_args, name="generator")
        self.ema_generator = Generator(**generator_args, name="ema_generator")
        self.ema_generator.trainable = False
        self.discriminator = Discriminator(image_size, text_dim, discriminator_channels,
                                           reconstruction=reconstruction_weight > 0,
                                           exemplar_size=exemplar_size, name="discriminator")
        if exemplar_size:
            self.exemplar_bank = ExemplarBank(exemplar_products, exemplar_slots, exemplar_size,
                                              text_dim, exemplar_threshold, exemplar_keys,
                                              name="exemplar_bank")
            self.exemplar_seed = keras.random.SeedGenerator(seed + 2, name="exemplar_seed")
        self.noise_seed = keras.random.SeedGenerator(seed, name="noise_seed")
        self.augment_seed = keras.random.SeedGenerator(seed + 1, name="augment_seed")
        self.ema_generator.set_weights(self.generator.get_weights())
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("d_loss", "g_loss", "gp", "real_score", "fake_score",
                          "contrastive", "reconstruction", "mode_seeking", "shape")}
        self.built = True  # every sub-model above is already built

    # the constructor's settings (all but the vocabulary): attributes and config alike
    SETTINGS = tuple(inspect.signature(__init__).parameters)[2:-1]

    def seed_generators(self):
        """The noise and augmentation streams (the exemplar stream is not checkpointed: a
        resumed instance-conditioned run retrieves other training exemplars than an
        uninterrupted one would)."""
        return [self.noise_seed, self.augment_seed]

    def get_config(self):
        return {"name": self.name, "vocabulary": self.vocabulary,
                **{name: getattr(self, name) for name in self.SETTINGS}}

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

    def _match(self, features, sentence, exemplar=None):
        """D's match logits [B, 1] of image features and sentences, plus the instance term
        of `exemplar` (the drawing G drew from and whether there was one) when given."""
        logits = self.discriminator.head([features, sentence], training=True)
        if exemplar is None:
            return logits
        return logits + self.discriminator.exemplar_critic.score(features, *exemplar,
                                                                 training=True)

    def _real_pair(self, images, sentence, exemplar=None):
        """D's features, its (16x16, 8x8) features (() without reconstruction) and match
        logits for the real pairs."""
        features, pyramid = self.discriminator.image_features(images, training=True)
        return features, pyramid or (), self._match(features, sentence, exemplar)

    def _real_pair_with_penalty(self, images, sentence, exemplar=None):
        """`_real_pair` plus the MA-GP of its logits, weighted for the lazy interval."""
        with tf.GradientTape() as gp_tape:
            gp_tape.watch([images, sentence])
            features, pyramid, logits = self._real_pair(images, sentence, exemplar)
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
        half, zero = self.image_size // 2, ops.zeros((1,), "int32")
        crop = tf.slice(middle, ops.concatenate([zero, quadrant * 8, zero], 0), [-1, 8, 8, -1])
        target = tf.slice(images, ops.concatenate([zero, quadrant * half, zero], 0),
                          [-1, half, half, -1])
        part = reconstruction_loss(self.discriminator.decode_part(crop, training=True), target)
        return whole + part

    def _training_exemplars(self, text_inputs, noise, data):
        """With instance conditioning: the training text inputs with the training
        candidates (`ExemplarBank.for_training`) added, and the one G draws from for each
        noise (for D's instance term); else (text_inputs, None)."""
        if not self.exemplar_size:
            return text_inputs, None
        batch = ops.shape(noise)[0]
        products = data.get("product_id", -ops.ones((batch,), "int32"))
        styles = data.get("style_id", -ops.ones((batch,), "int32"))
        candidates = self.exemplar_bank.for_training(products, styles, self.exemplar_seed)
        return text_inputs + candidates, pick_exemplar(*candidates, noise)

    def _discriminator_step(self, token_ids, images, noise, concept_ids=None, data=None):
        """Hinge loss on real-matched, real-mismatched (sentences rolled by one) and fake
        pairs, plus MA-GP, the contrastive loss (renderings of one concept are all
        positives) and the reconstruction loss; trains D and a trainable text encoder.
        With instance conditioning every match logit has D's instance term of the exemplar
        G drew from (the mismatched pairs keep theirs: a drawing of another product).

        Returns (the generator's text inputs (`text_inputs`), the exemplars, the step's
        values for the trackers).
        """
        with tf.GradientTape() as tape:
            sentence, text_inputs = self.text_inputs(token_ids, training=True)
            text_inputs = tuple(ops.stop_gradient(part) for part in text_inputs)
            text_inputs, exemplar = self._training_exemplars(text_inputs, noise, data or {})
            fake = self.generator([noise, *text_inputs], training=True)
            # Lazy regularisation (StyleGAN2): the penalty every `gp_every` D steps, scaled
            # up by that interval, saves most of its double back-propagation.
            if self.gp_every == 1:
                real_features, pyramid, real_logits, gp = self._real_pair_with_penalty(
                    images, sentence, exemplar)
            else:
                real_features, pyramid, real_logits, gp = tf.cond(
                    ops.equal(self.d_optimizer.iterations % self.gp_every, 0),
                    lambda: self._real_pair_with_penalty(images, sentence, exemplar),
                    lambda: self._real_pair(images, sentence, exemplar) + (ops.zeros(()),))
            mismatched_logits = self._match(ops.roll(real_features, 1, axis=0), sentence,
                                            exemplar)
            fake_features, _ = self.discriminator.image_features(
                self._augment(ops.stop_gradient(fake)), training=True)
            fake_logits = self._match(fake_features, sentence, exemplar)
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
        return text_inputs, exemplar, {"d_loss": d_loss, "gp": gp,
                                "real_score": ops.mean(real_logits),
                                "contrastive": real_contrastive, "reconstruction": reconstruction}

    def _generator_step(self, text_inputs, noise, concept_ids=None, exemplar=None):
        """Fool D on (fake, its sentence), match the sentence in D's image code and, with
        mode seeking, draw the first half of the prompts again from other noise and reward the
        difference; the text encoder is held fixed (`text_inputs`: the generator's,
        sentence first). Updates G and its EMA; returns the step's values."""
        sentence = text_inputs[0]
        batch = ops.shape(noise)[0]
        half = noise.shape[0] // 2 if self.mode_seeking_weight > 0 else 0
        if half:
            other_noise = keras.random.normal((half, self.noise_dim), seed=self.noise_seed)
            noises = ops.concatenate([noise, other_noise], axis=0)
            drawn_inputs = tuple(ops.concatenate([part, part[:half]], axis=0)
                                 for part in text_inputs)
        else:
            noises, drawn_inputs = noise, text_inputs
        with tf.GradientTape() as tape:
            drawn = self.generator([noises, *drawn_inputs], training=True)
            fake = drawn[:batch]
            fake_features, _ = self.discriminator.image_features(self._augment(fake),
                                                                 training=True)
            fake_logits = self._match(fake_features, sentence, exemplar)
            fake_contrastive = contrastive_loss(self.discriminator.projector(fake_features),
                                                sentence, self.contrastive_temperature,
                                                concept_ids)
            mode_seeking = (mode_seeking_loss(fake[:half], drawn[batch:], noise[:half],
                                              other_noise) if half else ops.zeros(()))
            shape = shape_loss(fake, *exemplar) if exemplar is not None else ops.zeros(())
            g_loss = (generator_hinge_loss(fake_logits)
                      + self.contrastive_weight * fake_contrastive
                      + self.mode_seeking_weight * mode_seeking
                      + self.exemplar_shape_weight * shape)
            scaled_loss = self._scaled(self.g_optimizer, g_loss)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(scaled_loss, g_vars), g_vars)
        update_moving_average(self.ema_generator.weights, self.generator.weights,
                              ema_decay_at(self.g_optimizer.iterations, self.ema_decay))
        return {"g_loss": g_loss, "fake_score": ops.mean(fake_logits),
                "mode_seeking": mode_seeking, "shape": shape}

    def train_step(self, data):
        """One D and one G step on {"images", "text" or "token_ids"[, "concept_id", ...]}."""
        token_ids = data["token_ids"] if "token_ids" in data else self.vectorizer(data["text"])
        noise = keras.random.normal((ops.shape(data["images"])[0], self.noise_dim),
                                    seed=self.noise_seed)
        concept_ids = data.get("concept_id")
        text_inputs, exemplar, d_values = self._discriminator_step(
            token_ids, self._augment(data["images"]), noise, concept_ids, data)
        values = {**d_values, **self._generator_step(text_inputs, noise, concept_ids, exemplar)}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}
