"""The worker runtime of the distributed mode: the loop, heartbeat and leases, outcome
recording and signals. The image work itself comes from ``imaging``, the queue from
``distributed``."""
