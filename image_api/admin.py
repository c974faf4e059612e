from django.contrib import admin

from image_api.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "mode", "status", "total", "created_at", "finished_at")
    list_filter = ("mode", "status")
    search_fields = ("id",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "id", "mode", "status", "created_at", "finished_at", "total", "output_format", "quality",
        "pipeline", "results", "stats",
    )

    def has_add_permission(self, request) -> bool:
        # Jobs are created by running a batch, never by hand.
        return False
