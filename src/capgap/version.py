"""capgap's version: a leaf, so that every layer can record it (an evaluation's software versions) without
importing the package root, which imports every layer."""

__version__ = "0.1.0"
