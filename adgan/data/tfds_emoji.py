"""TFDS builder for the shipped product-emoji set, so `tfds.load` works offline.

    import tensorflow_datasets as tfds
    from adgan.data import tfds_emoji  # registers "adgan_emoji"
    train = tfds.load("adgan_emoji", split="train", data_dir="~/tensorflow_datasets")

Each example: image uint8 [128, 128, 3], name_en, name_zh, keywords_en, keywords_zh
(" | "-separated), style (one of eight: noto, twemoji, fluent-3d, fluent, fluent-flat,
openmoji, fxemoji, emojione), group, subgroup. The data is read from `data/emoji/`
beside this file, or from `manifest=` when the builder is constructed directly.
"""

import os

import pandas as pd
import tensorflow_datasets as tfds

from data_loader import DEFAULT_MANIFEST, load_image

IMAGE_SIZE = 128
TEXT_FIELDS = ("name_en", "name_zh", "keywords_en", "keywords_zh", "style", "group", "subgroup")


class AdganEmoji(tfds.core.GeneratorBasedBuilder):
    """Product-like emoji artwork in eight drawing styles with English and Chinese captions."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "1,378 emoji in two styles at 64x64; ~10% of concepts held out as test.",
        "2.0.0": "The same concepts and split in eight styles (9,421 images) at 128x128.",
    }

    def __init__(self, *, manifest=DEFAULT_MANIFEST, **kwargs):
        self.manifest = manifest
        super().__init__(**kwargs)

    def _info(self):
        features = {"image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))}
        features.update({name: tfds.features.Text() for name in TEXT_FIELDS})
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("name_en", "image"),
            homepage="https://github.com/iconify/icon-sets",
            license=("Images: Apache-2.0 (Noto, Firefox OS emoji), MIT (Fluent 3D, colour, flat), "
                     "CC-BY-4.0 (Twemoji), CC-BY-SA-4.0 (OpenMoji, EmojiOne v1: share-alike); "
                     "text: Unicode License"),
        )

    def _split_generators(self, dl_manager):
        frame = pd.read_csv(self.manifest, dtype=str, keep_default_na=False)
        return {split: self._generate_examples(frame[frame["split"] == split])
                for split in sorted(frame["split"].unique())}

    def _generate_examples(self, frame):
        root = os.path.dirname(os.path.abspath(self.manifest))
        for _, row in frame.iterrows():
            example = {name: row[name] for name in TEXT_FIELDS}
            example["image"] = load_image(os.path.join(root, row["image"]), IMAGE_SIZE)
            yield row["image"], example
