"""The image library: filters, pipelines, codecs, storage, samples and ``process_image``, the
one entry point every execution mode calls. Plain functions over NumPy arrays; imports nothing
of Django, Redis or the rest of the project."""
