"""Prometheus metrics of the API: ``GET /metrics`` (views.py), the HTTP latency histogram
(latency.py) and the cluster's figures read from Redis at scrape time (collector.py)."""
