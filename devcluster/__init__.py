"""The local cluster behind ``make run``: supervisord running Redis, the API and N workers."""
