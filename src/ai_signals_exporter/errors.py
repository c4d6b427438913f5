"""`ConfigError`, on its own so that the web process can raise it without importing `config`
(pydantic and the config models are ~12 MB of a process that only serves bytes)."""


class ConfigError(Exception):
    """A config that cannot be used; the message names the file and the key path."""
