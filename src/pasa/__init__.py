"""PASA: Provisioning and Systems Access for NHS organisations."""

__version__ = "0.1.0"
