"""A run's data: its manifest's rows (the groups and styles it trains on), the product
names it can draw and the style words its settings name."""

import data_loader


def row_filter(config):
    """The run's filter of its manifest's rows: the `group` and `style` values it trains on."""
    return {"group": config.groups, "style": config.styles}


def manifest_rows(config, split, caption_columns=None, mark_recolorable=False):
    """(usable rows, data report) of a run's manifest: rows of `split` ("" = all) in the
    run's groups and styles, read and checked by `data_loader.load_examples`.

    caption_columns: defaults to the run's. mark_recolorable: flag the rows of the run's
    colour subgroups (`colors.py`) in the rows' `recolorable` column.
    Raises `data_loader.ManifestError` when no row is usable.
    """
    recolorable = (data_loader.recolor_filter(config.manifest, config.color_subgroups, True)
                   if mark_recolorable else None)
    return data_loader.load_examples(
        config.manifest, config.image_size, config.image_column,
        tuple(caption_columns or config.caption_columns), split or None, row_filter(config),
        recolorable)


def config_style_words(config):
    """{style: (English, Chinese)} that a run with these settings names in its captions
    ({} with `style_words` off, or a manifest without `styles.csv`)."""
    return data_loader.read_style_words(config.manifest, config.styles) if config.style_words else {}


def concept_names(config, columns=2):
    """The names in the first `columns` caption columns of a run's training rows: what it
    can draw (read without decoding the images)."""
    frame = data_loader.read_manifest(config.manifest, config.image_column,
                                      tuple(config.caption_columns[:columns]),
                                      config.split or None, row_filter(config))
    return list(dict.fromkeys(c for captions in frame["captions"] for c in captions))
