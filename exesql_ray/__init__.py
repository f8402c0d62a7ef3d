"""exesql-ray: teach language models to write SQL in many dialects by executing what they write."""

__version__ = "0.1.0"
