"""Images: uploads (validated before anything is stored), samples, listing, files."""
