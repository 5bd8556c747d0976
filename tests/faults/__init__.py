"""Fault tests: the worker under SIGKILL, target outages, HTTP errors and a database restart."""
