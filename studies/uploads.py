"""Studies uploaded from the browser: a spec file and a zip of the folders it names."""

from __future__ import annotations

import shutil
import stat
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest

from studies.spec import SpecError, StudySpec, parse_spec

# A zip may not unpack to more than this (a zip bomb stops here), nor hold more files.
MAX_UNPACKED_BYTES = 8 * 1024**3
MAX_MEMBERS = 100_000


class UploadSizeLimit(FileUploadHandler):
    """The first upload handler: skips every file of a request larger than
    ``STUDY_UPLOAD_MAX_BYTES`` before any is written anywhere, and leaves the
    reason in ``request.upload_refused`` for the view to show (the form fields,
    the CSRF token among them, are still read)."""

    def handle_raw_input(
        self,
        input_data: IO[bytes],
        META: dict[str, str],  # noqa: N803 - Django's name
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> None:
        self.received = 0
        self.limit = int(settings.STUDY_UPLOAD_MAX_BYTES)
        if content_length > self.limit:
            self._refuse(content_length)

    def _refuse(self, size: int) -> None:
        assert self.request is not None  # noqa: S101 - a request is being parsed
        self.request.upload_refused = (  # type: ignore[attr-defined]
            f"the upload is {size / 1024**2:,.1f} MiB; at most "
            f"{self.limit / 1024**2:,.0f} MiB are accepted (STUDY_UPLOAD_MAX_BYTES)"
        )

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        if getattr(self.request, "upload_refused", None):
            raise SkipFile

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:  # more than the request said it holds
            self._refuse(self.received)
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def upload_refused(request: HttpRequest) -> str | None:
    """Why the request's files were skipped (too large), if they were."""
    return getattr(request, "upload_refused", None)


class UploadError(ValueError):
    """The upload cannot make a study; the message says why (every spec problem)."""


@dataclass(frozen=True)
class Upload:
    spec: StudySpec
    folder: Path


def _safe_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise UploadError(f"the zip holds {len(members)} files; at most {MAX_MEMBERS} are accepted")
    total = 0
    for member in members:
        path = PurePosixPath(member.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in member.filename:
            raise UploadError(f"the zip's entry {member.filename!r} points outside its folder")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise UploadError(f"the zip's entry {member.filename!r} is a symbolic link")
        total += member.file_size
    if total > MAX_UNPACKED_BYTES:
        raise UploadError(
            f"the zip unpacks to {total / 1024**3:.1f} GiB; at most "
            f"{MAX_UNPACKED_BYTES / 1024**3:.0f} GiB are accepted"
        )
    return members


def unpack_upload(spec_file: IO[bytes], folder_zip: IO[bytes] | None) -> Upload:
    """Unpack the zip under MEDIA_ROOT/uploads/ and validate the spec against it.

    The spec's paths start at the zip's root, or inside its single top-level
    folder when the zip holds just that (a zipped study folder).
    Nothing is left behind when anything is wrong.

    Raises
    ------
    UploadError
        An unsafe or oversized zip, or a spec with problems (all listed).
    """
    name = getattr(spec_file, "name", "study.toml")
    try:
        text = spec_file.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UploadError(f"{name} is not UTF-8 text: {exc}") from exc
    folder = Path(settings.MEDIA_ROOT) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        if folder_zip is not None:
            try:
                with zipfile.ZipFile(folder_zip) as archive:
                    archive.extractall(folder, members=_safe_members(archive))
            except zipfile.BadZipFile as exc:
                raise UploadError(f"the folder upload is not a zip file: {exc}") from exc
        entries = [p for p in folder.iterdir() if p.name != "__MACOSX"]
        try:
            base = folder
            spec = parse_spec(text, base_dir=base, source=name)
        except SpecError as exc:
            # A zip of a whole folder: the spec's paths may start inside it.
            if not (len(entries) == 1 and entries[0].is_dir()):
                raise UploadError(str(exc)) from exc
            try:
                base = entries[0]
                spec = parse_spec(text, base_dir=base, source=name)
            except SpecError:
                raise UploadError(str(exc)) from exc
        (folder / "spec.toml").write_text(text, encoding="utf-8")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Upload(spec=spec, folder=base)
