"""Output serializers of jobs (one shape for every mode; distributed jobs add progress and
per-task state)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from image_api.jobs.thumbnails import thumbnail_path
from image_api.schema import absolute_url


class TimingSerializer(serializers.Serializer):
    filter = serializers.CharField()
    ms = serializers.FloatField()


class ResultErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}],
                      "nullable": True})
class ParamValueField(serializers.Field):
    """A filter parameter's value, passed through as it is."""

    def to_representation(self, value: Any) -> Any:
        return value


class StepSerializer(serializers.Serializer):
    filter = serializers.CharField()
    params = serializers.DictField(child=ParamValueField(),
                                   help_text="Parameter name -> value (see GET /api/filters/).")


class JobResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    image = serializers.CharField()
    status = serializers.ChoiceField(choices=["completed", "failed"])
    output_url = serializers.URLField(read_only=True, allow_null=True)
    thumbnail_url = serializers.URLField(
        read_only=True, allow_null=True,
        help_text="WebP preview, at most 256 px on its longest side (null when none).")
    format = serializers.CharField(allow_null=True)
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    bytes = serializers.IntegerField(allow_null=True)
    timings = TimingSerializer(many=True)
    total_ms = serializers.FloatField(allow_null=True)
    error = ResultErrorSerializer(allow_null=True)


class JobStatsSerializer(serializers.Serializer):
    wall_seconds = serializers.FloatField()
    images_per_second = serializers.FloatField(allow_null=True)


class CallbackAttemptSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True,
                                           help_text="The receiver's answer; null if none.")
    error = serializers.CharField(allow_null=True, help_text="Why there was no answer (timed "
                                  "out, connection refused, refused: a private address...).")
    duration_ms = serializers.FloatField()


class CallbackSerializer(serializers.Serializer):
    url = serializers.CharField()
    state = serializers.ChoiceField(
        choices=["waiting", "pending", "delivered", "failed"],
        help_text="waiting: the job has not finished; pending: an attempt is due (see "
        "next_attempt_at); delivered: a 2xx answer; failed: given up (CALLBACK_MAX_ATTEMPTS "
        "attempts, a 410 answer, or a URL refused at delivery).")
    attempts = CallbackAttemptSerializer(many=True, help_text="The newest 20, oldest first.")
    next_attempt_at = serializers.DateTimeField(allow_null=True)


class JobSerializer(serializers.Serializer):
    """A job as returned by the batch endpoints and GET /api/jobs/<id>/."""

    id = serializers.CharField()
    mode = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    total = serializers.IntegerField()
    output_format = serializers.CharField(
        allow_null=True, help_text="Requested output format; null means each input's own format."
    )
    quality = serializers.IntegerField()
    pipeline = StepSerializer(many=True)
    stats = JobStatsSerializer()
    results_url = serializers.URLField(
        read_only=True, allow_null=True, help_text="Zip of every completed output."
    )
    results = JobResultSerializer(many=True)
    callback = CallbackSerializer(
        allow_null=True, help_text="The job-finished callback and its delivery attempts; "
        "null when the batch named no callback_url.")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        data["results_url"] = absolute_url(request, "image_api:job-results-zip", job_id=data["id"])
        for result, raw in zip(data["results"], instance["results"], strict=True):
            result["thumbnail_url"] = None
            if result["status"] == "completed":
                result["output_url"] = absolute_url(
                    request, "image_api:job-output", job_id=data["id"], index=result["index"]
                )
                if thumbnail_path(data["id"], raw) is not None:
                    result["thumbnail_url"] = absolute_url(
                        request, "image_api:job-thumbnail", job_id=data["id"],
                        index=result["index"])
        return data


class DistributedJobStatsSerializer(serializers.Serializer):
    wall_seconds = serializers.FloatField(allow_null=True)
    images_per_second = serializers.FloatField(allow_null=True)


class DistributedResultSerializer(JobResultSerializer):
    status = serializers.ChoiceField(
        choices=["completed", "failed", "cancelled", "pending", "running", "delayed"])
    task_id = serializers.CharField()
    state = serializers.CharField()
    attempts = serializers.IntegerField()
    worker = serializers.CharField(allow_null=True)
    queued_ms = serializers.IntegerField(allow_null=True, help_text="Wait before its last start.")
    run_ms = serializers.IntegerField(allow_null=True, help_text="Last start to finish.")
    retry_at = serializers.DateTimeField(allow_null=True)


class ProgressSerializer(serializers.Serializer):
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    delayed = serializers.IntegerField()


class DistributedJobSerializer(JobSerializer):
    priority = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    progress = ProgressSerializer()
    results = DistributedResultSerializer(many=True)
    stats = DistributedJobStatsSerializer()


def job_serializer_class(job: dict[str, Any]) -> type[JobSerializer]:
    return DistributedJobSerializer if job.get("mode") == "distributed" else JobSerializer


class SubmittedSerializer(serializers.Serializer):
    id = serializers.CharField()
    mode = serializers.CharField()
    status = serializers.CharField()
    total = serializers.IntegerField()
    priority = serializers.CharField()
    status_url = serializers.URLField()
    duplicate = serializers.BooleanField(help_text="True when an Idempotency-Key matched.")


JOB_STATUSES = ["queued", "running", "completed", "completed_with_errors", "failed", "cancelled"]
JOB_MODES = ["threading", "multiprocessing", "distributed"]


class JobProgressSerializer(serializers.Serializer):
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    open = serializers.IntegerField(help_text="Tasks not ended yet (pending, running or "
                                    "waiting for a retry).")
    pending = serializers.IntegerField(
        allow_null=True, help_text="Null when unknown: a distributed job that has started "
        "(its detail tells each task's state).")
    running = serializers.IntegerField(allow_null=True, help_text="Null when unknown.")


class JobSummarySerializer(serializers.Serializer):
    """A job of the list: its counts, not its per-image results (see ``url``)."""

    id = serializers.CharField()
    mode = serializers.ChoiceField(choices=JOB_MODES)
    status = serializers.ChoiceField(choices=JOB_STATUSES)
    priority = serializers.CharField(allow_null=True, help_text="Distributed jobs only.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    total = serializers.IntegerField()
    progress = JobProgressSerializer()
    url = serializers.URLField(read_only=True, help_text="The job with its results.")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["url"] = absolute_url(self.context.get("request"), "image_api:job-detail",
                                   job_id=data["id"])
        return data


class JobListSerializer(serializers.Serializer):
    total = serializers.IntegerField(
        help_text="Jobs matching the filters (with a status filter, distributed jobs are "
        "counted among the newest read: see distributed_truncated).")
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    distributed_unavailable = serializers.BooleanField(
        help_text="Redis did not answer: the list holds the local jobs alone.")
    distributed_truncated = serializers.BooleanField(
        help_text="With a status filter, only the newest 1000 distributed jobs were read.")
    items = JobSummarySerializer(many=True)
