"""Trending arXiv: social posts linking arXiv papers, counted, ranked and searched."""

__version__ = "0.1.0"
