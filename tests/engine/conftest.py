"""Fixtures for ledger and worker tests (defined in ``pasa_engine_helpers``)."""

from pasa_engine_helpers import clock, record

__all__ = ["clock", "record"]
