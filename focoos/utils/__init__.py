"""Focoos' `focoos.utils` helpers (logging, timing, system facts, image and mask helpers, the REST client).

Each module imports only what it needs; none imports torch at import time.
"""
