"""Image processing (filters, pipelines, codecs, storage) and the worker runtime; no Django.

Submodules are imported explicitly (``from workers.pipeline import parse_pipeline``); this
package module stays empty so that importing the runtime does not pull in OpenCV.
"""
