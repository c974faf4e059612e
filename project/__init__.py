"""Django project: settings from the environment, URL routing, WSGI/ASGI entry points."""

from common import __version__

__all__ = ["__version__"]
