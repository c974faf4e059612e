"""The cluster at a glance: workers, queue figures, alerts, history and drain."""
