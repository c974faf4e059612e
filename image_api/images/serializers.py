"""Output serializers of images."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from image_api.schema import absolute_url


class ImageMetaSerializer(serializers.Serializer):
    id = serializers.CharField()
    format = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    bytes = serializers.IntegerField(required=False, allow_null=True)
    original_name = serializers.CharField(required=False, allow_null=True)


class ImageListItemSerializer(ImageMetaSerializer):
    kind = serializers.ChoiceField(choices=["upload", "sample"])
    url = serializers.URLField(read_only=True, allow_null=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["url"] = absolute_url(
            self.context.get("request"), "image_api:image-file", image_id=data["id"]
        )
        return data
