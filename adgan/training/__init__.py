"""Training support: settings and presets, losses, augmentation, callbacks, checkpoints,
distribution strategies, the exemplar bank and the keras.io baseline recipe."""
