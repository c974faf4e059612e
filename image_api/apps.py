from django.apps import AppConfig


class ImageApiConfig(AppConfig):
    name = "image_api"
    verbose_name = "Image API"
    default_auto_field = "django.db.models.BigAutoField"
