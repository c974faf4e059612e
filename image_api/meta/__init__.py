"""The service's own endpoints: the API root, health (readiness and liveness), the filters."""
