"""Serve the site locally: gunicorn plus one background-task worker."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from studies import demo
from studies.models import Study

BASE_DIR = Path(settings.BASE_DIR)


class Command(BaseCommand):
    help = "Run the web server (gunicorn) and a task worker (db_worker) until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2)

    def handle(self, *args: Any, **options: Any) -> str:
        base = f"http://{options['host']}:{options['port']}"
        self._print_links(base)
        worker = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, str(BASE_DIR / "manage.py"), "db_worker", "--no-reload"],
            cwd=BASE_DIR,
        )
        web = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "evalsite.wsgi",
                "--bind",
                f"{options['host']}:{options['port']}",
                "--workers",
                str(options["web_workers"]),
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ],
            cwd=BASE_DIR,
        )
        children = (web, worker)

        def stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        # `kill` (SIGTERM) stops the children too, as Ctrl+C does.
        signal.signal(signal.SIGTERM, stop)
        try:
            while all(child.poll() is None for child in children):
                try:
                    web.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    continue
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
        return "Stopped the web server and the task worker."

    def _print_links(self, base: str) -> None:
        lines = ["", "Codec Arena is running.", ""]
        for study in Study.objects.filter(status=Study.Status.OPEN).order_by("slug"):
            lines.append(f"  Rater link ({study.slug}): {base}/r/{study.slug}/?participant=me")
            lines.append(
                f"    as Prolific would send it: {base}/r/{study.slug}/"
                "?PROLIFIC_PID=demo-participant&STUDY_ID=demo&SESSION_ID=demo-1"
            )
        credentials = Path(settings.DEMO_CREDENTIALS_FILE)
        lines.append(f"  Researcher pages: {base}/studies/")
        if credentials.exists():
            password = credentials.read_text(encoding="utf-8").strip()
            lines.append(f"    log in as {demo.DEMO_RESEARCHER!r} with password {password!r}")
            lines.append(f"    (kept in {credentials})")
        lines += ["", "Press Ctrl+C to stop.", ""]
        self.stdout.write("\n".join(lines))
