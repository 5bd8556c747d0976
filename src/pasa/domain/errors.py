"""Errors a user or operator can act on. Each carries one clear sentence."""


class PasaError(Exception):
    """Base for errors shown to users as a single sentence (never a traceback)."""


class ConfigurationError(PasaError):
    """Settings, policy files or target configuration are invalid."""


class InputFileError(PasaError):
    """A whole input file is unusable (missing header, unreadable, wrong format)."""


class NotFoundError(PasaError):
    """A named object (person, target, import) does not exist."""
