"""The shape of GET /api/workers/status/, for the OpenAPI schema (the view answers the dict
``distributed.status.cluster_status`` builds; these serializers describe every field)."""

from __future__ import annotations

from rest_framework import serializers


class WorkerSerializer(serializers.Serializer):
    id = serializers.CharField()
    hostname = serializers.CharField(allow_null=True)
    pid = serializers.IntegerField(allow_null=True)
    version = serializers.CharField(allow_null=True)
    status = serializers.CharField(help_text="healthy, degraded, unhealthy, dead or stopped.")
    status_rule = serializers.CharField(help_text="The rule that gave the status.")
    state = serializers.CharField(
        allow_null=True,
        help_text="What the worker does: starting, idle, busy, stopping, draining (asked to "
        "drain, not gone yet), stopped, drained or dead.")
    draining = serializers.BooleanField(help_text="Asked to drain and not gone yet.")
    seconds_since_heartbeat = serializers.FloatField()
    current_task = serializers.CharField(allow_null=True)
    tasks_completed = serializers.IntegerField()
    tasks_failed = serializers.IntegerField()
    recent_total = serializers.IntegerField()
    recent_failed = serializers.IntegerField()
    uptime_s = serializers.FloatField(allow_null=True)
    concurrency = serializers.IntegerField()
    filters = serializers.ListField(child=serializers.CharField())
    started_at_ms = serializers.IntegerField(allow_null=True)


class ThroughputSerializer(serializers.Serializer):
    window_s = serializers.IntegerField()
    completed_last_10s = serializers.IntegerField()
    completed_last_60s = serializers.IntegerField()
    tasks_per_second_60s = serializers.FloatField()


class QueueFiguresSerializer(serializers.Serializer):
    pending = serializers.DictField(child=serializers.IntegerField(),
                                    help_text="Pending tasks per priority.")
    pending_total = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    delayed = serializers.IntegerField()
    completed = serializers.IntegerField()
    dead_lettered = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    accepted = serializers.IntegerField()
    failed_attempts = serializers.IntegerField()
    retried = serializers.IntegerField()
    reclaimed = serializers.IntegerField()
    fenced_completions = serializers.IntegerField()
    workers_reaped = serializers.IntegerField()
    requeued = serializers.IntegerField()
    delayed_set_size = serializers.IntegerField()
    dead_letter_set_size = serializers.IntegerField()
    throughput = ThroughputSerializer()
    oldest_pending_s = serializers.FloatField(
        allow_null=True, help_text="Seconds since the submission of the oldest pending task.")


class AlertSerializer(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.CharField()
    message = serializers.CharField()


class RulesSerializer(serializers.Serializer):
    heartbeat_interval_s = serializers.FloatField()
    heartbeat_timeout_s = serializers.FloatField()
    lease_s = serializers.FloatField()
    max_retries = serializers.IntegerField()


class WorkersStatusSerializer(serializers.Serializer):
    generated_at_ms = serializers.IntegerField()
    workers = WorkerSerializer(many=True)
    worker_summary = serializers.DictField(child=serializers.IntegerField(),
                                           help_text="Workers per status.")
    queue = QueueFiguresSerializer()
    alerts = AlertSerializer(many=True)
    rules = RulesSerializer()


class TaskSpanSerializer(serializers.Serializer):
    task = serializers.CharField(help_text="Task id.")
    job = serializers.CharField(help_text="Job id.")
    tenant = serializers.CharField()
    started_ms = serializers.IntegerField(help_text="Epoch ms when it started running.")
    ended_ms = serializers.IntegerField(help_text="Epoch ms when its outcome was recorded.")
    outcome = serializers.ChoiceField(choices=["completed", "retry", "dead", "fenced"])


class WorkerDetailSerializer(WorkerSerializer):
    recent_tasks = TaskSpanSerializer(many=True, help_text="Newest first (at most 100).")


class HistoryPointSerializer(serializers.Serializer):
    at_ms = serializers.IntegerField(help_text="Epoch ms of the sample.")
    interval_s = serializers.FloatField(help_text="Seconds since the sample before.")
    queue_depth = serializers.IntegerField(help_text="Pending tasks (every priority).")
    in_progress = serializers.IntegerField()
    delayed = serializers.IntegerField(help_text="Waiting for a retry.")
    completed = serializers.IntegerField(help_text="Tasks completed since the sample before.")
    failed_attempts = serializers.IntegerField(help_text="Failed attempts since the sample "
                                               "before (retried or dead-lettered).")
    dead_lettered = serializers.IntegerField(help_text="Dead letters since the sample before.")


class HistorySerializer(serializers.Serializer):
    bucket_s = serializers.IntegerField(help_text="At most one sample per bucket.")
    window_s = serializers.IntegerField(help_text="How far back samples are kept.")
    generated_at_ms = serializers.IntegerField()
    points = HistoryPointSerializer(many=True, help_text="Oldest first.")


class DrainedSerializer(serializers.Serializer):
    worker_id = serializers.CharField()
    draining = serializers.BooleanField()
