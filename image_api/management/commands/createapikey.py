"""``manage.py createapikey NAME [--admin]``: a new API key, printed once.

Only its SHA-256 digest is stored: copy the key from the output, it cannot be shown again.
``--list`` shows the keys (id, name, prefix, admin, revoked); ``--revoke ID`` revokes one.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from image_api.auth import create_key
from image_api.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key (printed once; only its digest is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="who or what the key is for")
        parser.add_argument("--admin", action="store_true",
                            help="may see every tenant and use the admin actions")
        parser.add_argument("--list", action="store_true", help="list the keys instead")
        parser.add_argument("--revoke", metavar="KEY_ID", help="revoke a key by its id")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for key in ApiKey.objects.all():
                state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                role = "admin" if key.admin else "tenant"
                self.stdout.write(f"{key.id}  {key.prefix}…  {role:6}  {state:18}  {key.name}")
            return
        if options["revoke"]:
            count = ApiKey.objects.filter(id=options["revoke"], revoked_at=None).update(
                revoked_at=timezone.now())
            if not count:
                raise CommandError(f"no active key with id {options['revoke']!r}")
            self.stdout.write(f"revoked {options['revoke']}")
            return
        name = (options["name"] or "").strip()
        if not name or len(name) > 100:
            raise CommandError("give the key a NAME of 1 to 100 characters")
        key, secret = create_key(name, admin=options["admin"])
        self.stderr.write(
            f"Created {'admin ' if key.admin else ''}key {key.id} ({name}); it is shown once:")
        self.stdout.write(secret)
