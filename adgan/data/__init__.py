"""Data helpers: drawing styles, colour words and recolouring, bundle captions, and the
shipped set as a TensorFlow Datasets builder."""
