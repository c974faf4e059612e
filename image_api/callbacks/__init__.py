"""Job-finished callbacks: a batch submitted with a ``callback_url`` (any mode) is POSTed, as
the job's JSON, signed with its tenant's secret, when it finishes; failed attempts are retried
with backoff, and every attempt is recorded on the job (its ``callback`` block).

- ``signing``: each tenant's secret (derived from CALLBACK_SECRET) and the submission check.
- ``outbox``: the due callbacks of both kinds of job under one interface: local jobs' rows
  (``Job.callback_due_at``), distributed jobs' Redis outbox (distributed/callbacks.py).
- ``sender``: what one round does (claim, render, POST, record) and the thread of every API
  process that runs rounds (started by gunicorn's ``post_worker_init``).
- ``views``: ``GET /api/callbacks/secret/``.

The sending side is the HTTP of common/webhooks.py: the URL is checked again at delivery (no
private addresses unless CALLBACK_ALLOW_PRIVATE), no redirect is followed, an attempt has a
hard time limit.
"""
