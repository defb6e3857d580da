"""Registre des retours d'expérience des territoires connectés: the core (standard, validation, storage)."""

__version__ = "0.1.0"
