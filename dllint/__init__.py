"""dllint: a linter for the silent bugs of deep-learning training code."""

__version__ = "0.1.0"
