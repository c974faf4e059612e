"""``python -m imgproc_cli``: the same as the ``imgproc`` console script."""

from imgproc_cli.main import main

main()
