"""Dead letters: list them, re-queue or discard them."""
