"""Jobs of every mode: submitting a batch (threading, multiprocessing, distributed),
reading a job, its outputs and zip, cancelling."""
