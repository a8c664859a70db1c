from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Create the demo superuser, or reset its password, so the printed login always works."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin", help="Login name (default: admin).")
        parser.add_argument(
            "--password", default="authhero-demo", help="Password (default: authhero-demo)."
        )

    def handle(
        self, *args: Any, username: str, password: str, verbosity: int, **options: Any
    ) -> None:
        user_model = get_user_model()
        user = user_model._default_manager.filter(username=username).first()
        if user is None:
            user_model._default_manager.create_superuser(username=username, password=password)
            action = "Created"
        else:
            user.set_password(password)
            user.is_staff = user.is_superuser = user.is_active = True
            user.save()
            action = "Reset"
        if verbosity:
            self.stdout.write(f"{action} the demo admin {username!r}.")
