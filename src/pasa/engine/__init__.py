"""Execution: the durable operations ledger and the workers that drain it."""
