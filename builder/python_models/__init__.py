"""Python-backend `model.py` files the builder copies into a repository (one class each, Triton's idiom)."""
