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
    state = serializers.CharField(allow_null=True, help_text="What the worker says it does.")
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
