"""ferryman: carry Docker releases and data between environments over SSH."""

__version__ = "0.1.0"
