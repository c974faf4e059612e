"""Each tenant's storage usage against its quota, the storage's free-space floor, and
``GET /api/usage/``."""
