"""Redis protocol of the distributed mode: keys, queue, retries, dead letters, lease reclaim,
worker registry and job records. Imports nothing from Django."""
