"""DRF app: the REST API (uploads, filters, batches in the threading/multiprocessing modes)."""
