"""pixlabel: automatic image annotation from a handful of human labels."""

__version__ = "0.1.0"
