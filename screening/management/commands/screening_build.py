"""Build the artifact test's item bank of the current screening version (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from screening import services
from screening.models import SCREENING_VERSION


class Command(BaseCommand):
    help = "Encode the compression-artifact screening items (done once per screening version)."

    def handle(self, *args: Any, **options: Any) -> str:
        count = services.artifact_bank_build()
        return f"Screening {SCREENING_VERSION}: {count} artifact items ready."
