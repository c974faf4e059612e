"""The console's pages. Each renders a template with the API URLs it reads; the data comes
from the JSON API, fetched by the page's script (console.js) with the caller's key, so a page
shows exactly what the caller's key may see through the API. The pages themselves hold no
data and need no key: with AUTH_REQUIRED on, a page asks for the key (kept in the tab's
sessionStorage) and sends it as a bearer token with each API call."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from image_api.jobs.serializers import JOB_MODES, JOB_STATUSES

NAV = (("overview", "Overview", "console:overview"), ("jobs", "Jobs", "console:jobs"),
       ("dead-letters", "Dead letters", "console:dead-letters"))


def _page(request: HttpRequest, template: str, page: str, **context: Any) -> HttpResponse:
    context.update(
        page=page,
        nav=[(key, label, reverse(name)) for key, label, name in NAV],
        api={
            "status": reverse("image_api:workers-status"),
            "history": reverse("image_api:workers-history"),
            "jobs": reverse("image_api:jobs"),
            "dead_letters": reverse("image_api:dead-letters"),
            "workers": reverse("image_api:workers-status").removesuffix("status/"),
            "console": reverse("console:overview"),
        },
    )
    return render(request, f"image_api/console/{template}", context)


def _console_view(view: Any) -> Any:
    # GET only; the CSRF cookie is set so that the page's POSTs can carry X-CSRFToken.
    return require_GET(ensure_csrf_cookie(view))


@_console_view
def overview(request: HttpRequest) -> HttpResponse:
    """Charts of the last hour, the alerts and the worker table with Drain buttons."""
    return _page(request, "overview.html", "overview")


@_console_view
def jobs(request: HttpRequest) -> HttpResponse:
    """Every job the caller may see, with progress bars, filters and pages."""
    return _page(request, "jobs.html", "jobs", statuses=JOB_STATUSES, modes=JOB_MODES)


@_console_view
def job(request: HttpRequest, job_id: str) -> HttpResponse:
    """One job: thumbnails, each task's state, Cancel and Download buttons, live updates."""
    return _page(request, "job.html", "job", job_id=job_id)


@_console_view
def dead_letters(request: HttpRequest) -> HttpResponse:
    """Dead letters with Requeue and Discard buttons."""
    return _page(request, "dead_letters.html", "dead-letters")


@_console_view
def worker(request: HttpRequest, worker_id: str) -> HttpResponse:
    """One worker and its recent tasks as a timeline."""
    return _page(request, "worker.html", "worker", worker_id=worker_id)
