"""Database records of the in-process modes (threading, multiprocessing).

Distributed jobs live in Redis; only jobs run inside the API process are stored here.
"""

from __future__ import annotations

from django.db import models


class Job(models.Model):
    """One finished batch: its pipeline, per-image results and throughput."""

    class Mode(models.TextChoices):
        THREADING = "threading"
        MULTIPROCESSING = "multiprocessing"

    class Status(models.TextChoices):
        COMPLETED = "completed"
        COMPLETED_WITH_ERRORS = "completed_with_errors"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    mode = models.CharField(max_length=20, choices=Mode.choices)
    status = models.CharField(max_length=24, choices=Status.choices)
    created_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField()
    # None means "same format as each input" (see imaging.codecs.output_format_for).
    output_format = models.CharField(max_length=8, null=True, blank=True)
    quality = models.PositiveSmallIntegerField(default=90)
    pipeline = models.JSONField(default=list)
    # One dict per image, in batch order, holding the storage-relative output key.
    results = models.JSONField(default=list)
    stats = models.JSONField(default=dict)
    # The tenant (API key id, or "anonymous") that submitted the job.
    owner = models.CharField(max_length=40, default="anonymous", db_index=True)
    # Job-finished callback (image_api/callbacks): where to POST the job, the record of the
    # attempts ({"state", "tries", "attempts", "base_url"}), and when the next attempt is due
    # (null: none due; the outbox of the local modes is this indexed column).
    callback_url = models.CharField(max_length=2048, blank=True, default="")
    callback = models.JSONField(default=dict, blank=True)
    callback_due_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.id} ({self.mode}, {self.status})"


class ApiKey(models.Model):
    """A client's key. Only a SHA-256 digest of the secret is stored (the secret is 256 random
    bits, so a fast hash is enough: it cannot be guessed, only stolen, and the digest alone
    does not authenticate). The key's id is the tenant that owns what its requests create."""

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    name = models.CharField(max_length=100)
    # The first characters of the secret, to recognise a key in a list without storing it.
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    admin = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("created_at",)

    def __str__(self) -> str:
        return f"{self.name} ({self.id}{', admin' if self.admin else ''})"


class TenantUsage(models.Model):
    """Bytes a tenant keeps in the image storage, when there is no Redis (with REDIS_URL set
    the figure lives in Redis, distributed/usage.py). Moved by conditional UPDATEs only
    (image_api/usage/ledger.py), so concurrent API processes cannot pass a quota together."""

    tenant = models.CharField(primary_key=True, max_length=40)
    used_bytes = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.tenant}: {self.used_bytes} bytes"
