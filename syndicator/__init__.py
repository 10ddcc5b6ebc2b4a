"""Syndicator: a folder of front-matter posts in, per-topic RSS, Atom and JSON feeds out."""

__version__ = "0.1.0"
