"""The cluster at a glance: workers, queue figures, alerts, and the live dashboard."""
