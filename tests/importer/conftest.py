"""Importer tests share the session's converted tiny models (tests/support/tiny_models.py)."""

from support.tiny_models import tiny_model

__all__ = ["tiny_model"]
