"""What the API process and the workers share beyond the Redis protocol: the version, typed
settings from the environment (``common.settings``) and the log format (``common.logs``).

Imports nothing of the project except ``distributed``."""

__version__ = "0.1.0"
