"""Creating a study with its images, conditions and stimuli."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from studies.ladder import EncodedStimulus
from studies.models import (
    Condition,
    ConditionKind,
    SourceImage,
    Stimulus,
    Study,
    StudyStatus,
    new_image_token,
)
from studies.services.errors import ServiceError

# Golden trials put the original (as a lossless stimulus of its own) against
# this heavily degraded version, which nobody who looks can prefer.
GOLDEN_DEGRADED_CODEC = "jpeg"
GOLDEN_DEGRADED_QUALITY = 3
# The golden pair's codec name in the conditions table; never a study codec.
GOLDEN_CODEC = "golden"
GOLDEN_CONDITIONS = {
    "golden-reference": ConditionKind.GOLDEN_REFERENCE,
    "golden-degraded": ConditionKind.GOLDEN_DEGRADED,
}


def golden_stimuli(sources: Mapping[str, np.ndarray]) -> list[EncodedStimulus]:
    """The two golden-trial stimuli of every source image."""
    import codecs_adapter

    degrader = codecs_adapter.get_codec(GOLDEN_DEGRADED_CODEC)
    out: list[EncodedStimulus] = []
    for name, rgb in sources.items():
        png = codecs_adapter.png_bytes(rgb)
        out.append(
            EncodedStimulus(
                image=name,
                codec=GOLDEN_CODEC,
                condition="golden-reference",
                rate_index=1,
                target_bpp=None,
                bpp=codecs_adapter.bits_per_pixel(len(png), rgb.shape[1], rgb.shape[0]),
                bitstream_bytes=len(png),
                png=png,
                sha256=codecs_adapter.sha256_bytes(png),
                library="png (lossless)",
                version="",
            )
        )
        point = codecs_adapter.encode_at(degrader, rgb, GOLDEN_DEGRADED_QUALITY)
        degraded = EncodedStimulus.from_point(
            point, image=name, condition="golden-degraded", rate_index=0
        )
        out.append(dataclasses.replace(degraded, codec=GOLDEN_CODEC))
    return out


def study_create(
    *,
    slug: str,
    title: str,
    owner: Any,
    anchor_codec: str,
    sources: Mapping[str, np.ndarray],
    stimuli: Sequence[EncodedStimulus],
    status: StudyStatus | str = StudyStatus.OPEN,
    **options: Any,
) -> Study:
    """Create a study with its source images, conditions and stimuli, all or nothing.

    ``sources`` maps image names to RGB arrays (the originals); ``stimuli`` are
    the encoded reconstructions from ``studies.ladder.encode_ladders``. See
    :func:`study_add_stimuli` for what is checked and added.

    Raises
    ------
    ServiceError
        The slug is taken, or the stimuli do not make a study (see
        :func:`study_add_stimuli`).
    """
    if Study.objects.filter(slug=slug).exists():
        raise ServiceError(f"a study with slug {slug!r} exists already")
    with transaction.atomic():
        study = Study.objects.create(
            slug=slug, title=title, owner=owner, anchor_codec=anchor_codec, status=status, **options
        )
        study_add_stimuli(study=study, sources=sources, stimuli=stimuli)
    return study


def _check_stimuli(
    anchor_codec: str, sources: Mapping[str, np.ndarray], stimuli: Sequence[EncodedStimulus]
) -> None:
    reserved = sorted({s.condition for s in stimuli} & set(GOLDEN_CONDITIONS))
    if reserved or any(s.codec == GOLDEN_CODEC for s in stimuli):
        raise ServiceError(
            f"names reserved for golden trials: codec {GOLDEN_CODEC!r}, conditions "
            + ", ".join(GOLDEN_CONDITIONS)
        )
    conditions = {(s.condition, s.codec, s.rate_index, s.target_bpp) for s in stimuli}
    names = [c[0] for c in conditions]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ServiceError("conditions defined twice (two codecs or rates): " + ", ".join(clashes))
    if anchor_codec not in {c[1] for c in conditions}:
        raise ServiceError(f"anchor codec {anchor_codec!r} has no conditions in this study")
    unknown = sorted({s.image for s in stimuli} - set(sources))
    if unknown:
        raise ServiceError("stimuli of images that are not study images: " + ", ".join(unknown))
    present = {(s.condition, s.image) for s in stimuli}
    missing = [
        f"{condition} on {image}"
        for condition, *_ in sorted(conditions)
        for image in sources
        if (condition, image) not in present
    ]
    if missing:
        raise ServiceError("missing stimuli: " + ", ".join(missing))


def study_add_stimuli(
    *,
    study: Study,
    sources: Mapping[str, np.ndarray],
    stimuli: Sequence[EncodedStimulus],
) -> Study:
    """Store a study's source images, conditions and stimuli, all or nothing.

    Files are written under MEDIA_ROOT with opaque names; if anything fails,
    the files written so far are removed and no row is left behind. Two more
    conditions, the golden-trial pair of every image (the original and a
    heavily degraded version), are added here.

    Raises
    ------
    ServiceError
        The study has stimuli already, the anchor codec has no conditions, a
        condition uses a reserved golden-trial name or is defined twice, or
        some condition lacks a stimulus for some image.
    """
    from codecs_adapter import png_bytes, sha256_bytes

    if study.source_images.exists():
        raise ServiceError(f"study {study.slug!r} has its stimuli already")
    _check_stimuli(study.anchor_codec, sources, stimuli)
    stimuli = [*stimuli, *golden_stimuli(sources)]
    conditions = {(s.condition, s.codec, s.rate_index, s.target_bpp) for s in stimuli}

    saved: list[str] = []

    def store(folder: str, token: str, data: bytes) -> str:
        name = default_storage.save(f"{folder}/{token}.png", ContentFile(data))
        saved.append(name)
        return name

    try:
        with transaction.atomic():
            images: dict[str, SourceImage] = {}
            for name, rgb in sources.items():
                png = png_bytes(rgb)
                token = new_image_token()
                images[name] = SourceImage.objects.create(
                    study=study,
                    name=name,
                    token=token,
                    file=store("sources", token, png),
                    width=rgb.shape[1],
                    height=rgb.shape[0],
                    sha256=sha256_bytes(png),
                )
            condition_rows = {
                name: Condition.objects.create(
                    study=study,
                    name=name,
                    kind=GOLDEN_CONDITIONS.get(name, ConditionKind.STUDY),
                    codec=codec,
                    rate_index=rate_index,
                    target_bpp=target,
                )
                for name, codec, rate_index, target in sorted(
                    conditions, key=lambda c: (c[0], c[1], c[2])
                )
            }
            for s in stimuli:
                token = new_image_token()
                Stimulus.objects.create(
                    condition=condition_rows[s.condition],
                    source_image=images[s.image],
                    token=token,
                    file=store("stimuli", token, s.png),
                    sha256=s.sha256,
                    bitstream_bytes=s.bitstream_bytes,
                    bpp=s.bpp,
                    codec_library=s.library,
                    codec_version=s.version,
                    settings=s.settings,
                    metrics=s.metrics,
                )
    except BaseException:
        for name in saved:
            default_storage.delete(name)
        raise
    return study
