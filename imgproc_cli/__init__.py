"""``imgproc``: the command-line client of the image-processing API.

A pure HTTP client (requests, click, rich): it imports nothing of the server's packages, so it
runs anywhere the API is reachable. ``imgproc --help`` lists the commands; the exit codes are
in :mod:`imgproc_cli.errors`.
"""

__version__ = "0.1.0"
