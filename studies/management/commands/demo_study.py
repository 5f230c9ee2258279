"""Build the demo study (idempotent: an existing study is left as it is)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import demo, services
from studies.ladder import LadderError, encode_ladders
from studies.models import SamplingStrategy, Study


class Command(BaseCommand):
    help = (
        "Build the demo study: skimage photographs and a graphics image, four codecs, four rates."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", default=demo.DEMO_SLUG, help="Slug of the study to build.")
        parser.add_argument(
            "--no-screening",
            action="store_true",
            help="Let raters start comparing at once (e.g. to try the rater API).",
        )
        parser.add_argument("--workers", type=int, default=None, help="Encoder processes.")
        parser.add_argument(
            "--strategy",
            choices=SamplingStrategy.values,
            default=SamplingStrategy.BALANCED,
            help="How pairs are chosen (docs/rating.md); e.g. to rehearse active sampling.",
        )
        parser.add_argument(
            "--refresh-every",
            type=int,
            default=Study.DEFAULT_REFRESH_EVERY,
            help="Counted votes between background refreshes of the posterior.",
        )
        parser.add_argument(
            "--target-halfwidth",
            type=float,
            default=None,
            help="Target half-width of every 95%% BD-rate interval, percentage points.",
        )

    def handle(self, *args: Any, **options: Any) -> str:
        owner = self._researcher()
        slug = options["slug"]
        if Study.objects.filter(slug=slug).exists():
            return f"Study {slug!r} exists already; nothing changed."
        images = demo.demo_images()
        self.stdout.write(
            f"Encoding {len(images)} images with {len(demo.DEMO_LADDERS)} codecs "
            f"at {sum(len(ladder.targets_bpp) for ladder in demo.DEMO_LADDERS)} rate points…"
        )

        def progress(done: int, total: int) -> None:
            if done == total or done % max(total // 10, 1) == 0:
                self.stdout.write(f"  {done}/{total} stimuli encoded")

        try:
            stimuli = encode_ladders(
                images,
                demo.DEMO_LADDERS,
                workers=options["workers"],
                progress=progress,
                cache_dir=settings.VAR_DIR / "encode-cache",
                metrics=True,
            )
        except LadderError as exc:
            raise CommandError(str(exc)) from exc
        study = services.study_create(
            slug=slug,
            title=demo.DEMO_TITLE,
            owner=owner,
            anchor_codec=demo.DEMO_ANCHOR,
            sources=images,
            stimuli=stimuli,
            trials_per_session=demo.DEMO_TRIALS_PER_SESSION,
            completion_code=demo.DEMO_COMPLETION_CODE,
            screening_required=not options["no_screening"],
            seed=demo.DEMO_SEED,
            sampling_strategy=options["strategy"],
            refresh_every=options["refresh_every"],
            target_halfwidth=options["target_halfwidth"],
        )
        return (
            f"Built study {study.slug!r} ({study.sampling_strategy} pairs): {len(images)} images, "
            f"{sum(len(ladder.targets_bpp) for ladder in demo.DEMO_LADDERS)} conditions, "
            f"{len(stimuli)} stimuli "
            "(plus the golden-trial pair of each image)."
        )

    def _researcher(self) -> Any:
        user_model = get_user_model()
        user = user_model.objects.filter(username=demo.DEMO_RESEARCHER).first()
        if user is not None:
            return user
        password, _ = demo.researcher_password(settings.DEMO_CREDENTIALS_FILE)
        user = user_model.objects.create_user(username=demo.DEMO_RESEARCHER, password=password)
        self.stdout.write(f"Created researcher account {demo.DEMO_RESEARCHER!r}.")
        return user
