"""GAN losses as small pure functions: DF-GAN's hinge losses and matching-aware gradient
penalty, the contrastive image-text loss (XMC-GAN), FastGAN's reconstruction loss for D,
MSGAN's mode-seeking loss and instance conditioning's shape term for G."""

from keras import ops


def discriminator_hinge_loss(real_logits, mismatched_logits, fake_logits):
    """DF-GAN's D loss: real pairs above +1; mismatched and fake pairs below -1."""
    real = ops.mean(ops.relu(1.0 - real_logits))
    wrong = ops.mean(ops.relu(1.0 + mismatched_logits))
    fake = ops.mean(ops.relu(1.0 + fake_logits))
    return real + (wrong + fake) / 2.0


def generator_hinge_loss(fake_logits):
    """G loss: raise D's score of (fake image, its sentence)."""
    return -ops.mean(fake_logits)


def matching_aware_gradient_penalty(image_grads, sentence_grads, weight=2.0, power=6.0):
    """MA-GP: weight * mean(||(dD/dimage, dD/dsentence)||^power) on real matched pairs."""
    squared = (ops.sum(ops.square(ops.reshape(image_grads, (ops.shape(image_grads)[0], -1))), 1)
               + ops.sum(ops.square(sentence_grads), 1))
    return weight * ops.mean(ops.power(ops.sqrt(squared + 1e-12), power))


def contrastive_loss(image_codes, sentences, temperature=0.1, concept_ids=None):
    """Symmetric InfoNCE: each image must pick its own sentence in the batch, and back.

    image_codes, sentences: [B, T]; cosine similarities are divided by `temperature`.
    With `concept_ids` [B], every pair of the same concept is a positive (several
    renderings of one product are all right answers): the loss of each row is
    -log(sum of its positives' softmax probabilities).
    """
    images = image_codes / (ops.norm(image_codes, axis=1, keepdims=True) + 1e-6)
    texts = sentences / (ops.norm(sentences, axis=1, keepdims=True) + 1e-6)
    logits = ops.matmul(images, ops.transpose(texts)) / temperature
    if concept_ids is None:
        positive = ops.eye(ops.shape(logits)[0], dtype="bool")
    else:
        positive = ops.equal(concept_ids[:, None], concept_ids[None, :])

    def one_way(scores):
        hidden = ops.where(positive, scores, ops.full_like(scores, -1e9))
        return ops.mean(ops.logsumexp(scores, axis=1) - ops.logsumexp(hidden, axis=1))

    return (one_way(logits) + one_way(ops.transpose(logits))) / 2.0


def reconstruction_loss(decoded, target):
    """FastGAN's self-supervision of D: mean absolute error between a decoder's image and the
    real image it should redraw (resized to the decoder's side)."""
    target = ops.image.resize(target, ops.shape(decoded)[1:3], interpolation="bilinear")
    return ops.mean(ops.abs(ops.cast(decoded, "float32") - target))


def mode_seeking_loss(first, second, first_noise, second_noise):
    """MSGAN: 1 / (mean|G(z1, t) - G(z2, t)| / mean|z1 - z2|), small when two noises give two
    different images for one text."""
    images = ops.mean(ops.abs(first - second), axis=(1, 2, 3))
    noises = ops.mean(ops.abs(first_noise - second_noise), axis=1)
    return 1.0 / (ops.mean(images / noises) + 1e-5)


def pixel_l1_loss(upsampled, target):
    """Mean absolute pixel error of an up-sampled picture against the real one."""
    return ops.mean(ops.abs(upsampled - target))


def feature_l1_loss(upsampled_features, target_features):
    """Perceptual loss: mean absolute error of image-encoder feature maps, each layer's
    divided by the target's mean magnitude so every layer weighs alike."""
    total = 0.0
    for fake, real in zip(upsampled_features, target_features):
        total += ops.mean(ops.abs(fake - real)) / (ops.mean(ops.abs(real)) + 1e-6)
    return total / len(upsampled_features)


def ink(images, side):
    """How far each pixel of images [B, S, S, 3] in [-1, 1] is from the white background
    (1 - its lightest channel: 0 on white, 1 on any saturated or dark colour), averaged over
    S/side x S/side cells: the drawing's silhouette [B, side, side, 1]."""
    darkness = 1.0 - ops.min((ops.cast(images, "float32") + 1.0) / 2.0, axis=-1, keepdims=True)
    factor = images.shape[1] // side
    return darkness if factor == 1 else ops.average_pool(darkness, factor, factor)


def shape_loss(fake, exemplar, has):
    """Instance conditioning's shape term: mean |ink(fake) - ink(exemplar)| at the exemplar's
    side [B, s, s, 3], over the rows that have one (`has` [B, 1]); a silhouette, not pixels,
    so the colour and style stay free (a raw-pixel distance drew the white median)."""
    side = exemplar.shape[1]
    gap = ops.mean(ops.abs(ink(fake, side) - ink(exemplar, side)), axis=(1, 2, 3))
    has = ops.cast(has[:, 0], "float32")
    return ops.sum(gap * has) / ops.maximum(ops.sum(has), 1.0)
