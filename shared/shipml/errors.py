"""Errors that mean "the user did something we can explain", as opposed to a bug.

The CLI prints these as one line on stderr and exits non-zero; the API turns them into 4xx answers.
"""


class ShipmlError(Exception):
    """A mistake the user can fix: the message says what is wrong and, where possible, what to do."""


class SchemaError(ShipmlError):
    """Input data does not match a model's feature schema."""


class BundleError(ShipmlError):
    """A model bundle is missing, tampered with, or made by incompatible library versions."""
