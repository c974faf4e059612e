"""Output serializers of jobs (one shape for every mode; distributed jobs add progress and
per-task state)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from image_api.schema import absolute_url


class TimingSerializer(serializers.Serializer):
    filter = serializers.CharField()
    ms = serializers.FloatField()


class ResultErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class StepSerializer(serializers.Serializer):
    filter = serializers.CharField()
    params = serializers.DictField()


class JobResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    image = serializers.CharField()
    status = serializers.ChoiceField(choices=["completed", "failed"])
    output_url = serializers.URLField(read_only=True, allow_null=True)
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

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        data["results_url"] = absolute_url(request, "image_api:job-results-zip", job_id=data["id"])
        for result in data["results"]:
            if result["status"] == "completed":
                result["output_url"] = absolute_url(
                    request, "image_api:job-output", job_id=data["id"], index=result["index"]
                )
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
