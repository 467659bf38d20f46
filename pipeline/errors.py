"""Errors a user can act on. Each carries a one-line message; the CLI prints it without a traceback."""


class LivesubError(Exception):
    """Base class: the message is one line meant for the user."""


class ConfigError(LivesubError):
    """A configuration file or command-line setting is wrong."""


class ModelError(LivesubError):
    """A model is missing, damaged or cannot be loaded."""


class AudioError(LivesubError):
    """An input cannot be read as audio, or holds nothing usable."""
