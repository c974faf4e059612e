"""Django project: settings from the environment, URL routing, WSGI/ASGI entry points."""

from distributed import __version__

__all__ = ["__version__"]
