"""Measuring: metrics, the report writer, the independent judge and its reading of runs."""
