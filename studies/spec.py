"""Study definition files (TOML): reading and validating them.

docs/study-spec.md describes every key. Validation collects every problem it
finds; each names the key, the line of the file and what was expected, e.g.
``study.toml, line 12: display.mode: expected one of side-by-side, stacked,
flip, got 'tiled'``. Nothing is created from a spec with a problem.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codecs_adapter.external import CONFIG_KEYS
from studies.models import RaterPlatform, SamplingStrategy, Study
from studies.models import StudyDisplayMode as DisplayMode

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
CODEC_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
IMAGE_SUFFIXES = (".png",)
SAMPLING_STRATEGIES = tuple(SamplingStrategy.values)


@dataclass(frozen=True)
class SpecProblem:
    key: str
    line: int | None
    message: str

    def render(self, source: str) -> str:
        where = f"{source}, line {self.line}" if self.line else source
        return f"{where}: {self.key}: {self.message}"


class SpecError(ValueError):
    """A spec with problems; ``problems`` lists every one, the message shows them all."""

    def __init__(self, source: str, problems: Sequence[SpecProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(p.render(source) for p in self.problems))


@dataclass(frozen=True)
class CodecSpec:
    name: str
    bpp: tuple[float, ...]
    command: Mapping[str, Any] | None = None  # external command codec configuration


@dataclass(frozen=True)
class StudySpec:
    """A validated study definition; paths are absolute."""

    slug: str
    title: str
    anchor: str
    images: Path
    question: str = Study.DEFAULT_QUESTION
    instructions: str = ""
    codecs: tuple[CodecSpec, ...] = ()
    imports: tuple[Path, ...] = ()
    display: Mapping[str, Any] = field(default_factory=dict)
    session: Mapping[str, Any] = field(default_factory=dict)
    sampling: Mapping[str, Any] = field(default_factory=dict)
    screening: Mapping[str, Any] = field(default_factory=dict)
    recruitment: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""  # the file as written, kept in the study's bundle

    def study_fields(self) -> dict[str, Any]:
        """Keyword arguments of Study for everything the spec sets."""
        d, s, sa, sc, r = (
            self.display,
            self.session,
            self.sampling,
            self.screening,
            self.recruitment,
        )
        fields: dict[str, Any] = {
            "question": self.question,
            "instructions": self.instructions,
            "display_mode": d.get("mode"),
            "crop_size": d.get("crop_size"),
            "allow_ties": d.get("allow_ties"),
            "min_view_ms": d.get("min_view_ms"),
            "min_flips": d.get("min_flips"),
            "trials_per_session": s.get("trials"),
            "practice_trials": s.get("practice_trials"),
            "golden_rate": s.get("golden_rate"),
            "pause_every": s.get("pause_every"),
            "sampling_strategy": sa.get("strategy"),
            "target_halfwidth": sa.get("target_halfwidth"),
            "vote_budget": sa.get("vote_budget"),
            "refresh_every": sa.get("refresh_every"),
            "auto_close": sa.get("auto_close"),
            "screening_required": sc.get("required"),
            "completion_code": r.get("completion_code"),
            "screen_out_code": r.get("screen_out_code"),
            "failed_attention_code": r.get("failed_attention_code"),
            "platform": r.get("platform"),
        }
        return {k: v for k, v in fields.items() if v is not None}

    def screening_policy(self) -> dict[str, Any]:
        sc = self.screening
        names = {
            "colour": "require_colour",
            "tritan": "require_tritan",
            "artifacts": "require_artifacts",
            "artifact_cutoff_level": "artifact_cutoff_level",
        }
        return {names[k]: v for k, v in sc.items() if k in names}


# --- Where a key is written -------------------------------------------------------------


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]+\")\s*=")


def key_lines(text: str) -> dict[str, int]:
    """Line of each key path in a TOML text: ``display.mode``, ``codec[1].bpp``, tables too.

    Good enough for files written by people (one assignment per line, tables
    and arrays of tables as headers); a key it cannot place gets no line.
    """
    lines: dict[str, int] = {}
    table = ""
    counts: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            name = header.group(2).replace('"', "").replace(" ", "")
            if header.group(1) == "[[":
                index = counts.get(name, 0)
                counts[name] = index + 1
                table = f"{name}[{index}]"
            else:
                table = name
            lines.setdefault(table, number)
            lines.setdefault(name, number)
            continue
        assignment = _ASSIGNMENT.match(raw)
        if assignment:
            key = assignment.group(1).strip('"')
            lines.setdefault(f"{table}.{key}" if table else key, number)
    return lines


# --- Validation -------------------------------------------------------------------------

_Expect = tuple[type, ...]

TOP_KEYS = {
    "slug",
    "title",
    "question",
    "instructions",
    "images",
    "anchor",
    "display",
    "session",
    "sampling",
    "screening",
    "recruitment",
    "codec",
    "import",
}
# Each section's keys: (accepted Python types, a check or None, what is expected).
Section = dict[str, tuple[_Expect, Any, str]]


def _positive(v: Any) -> bool:
    return v > 0


def _non_negative(v: Any) -> bool:
    return v >= 0


SECTIONS: dict[str, Section] = {
    "display": {
        "mode": (
            (str,),
            lambda v: v in DisplayMode.values,
            "one of " + ", ".join(DisplayMode.values),
        ),
        "crop_size": ((int,), _positive, "a positive whole number of pixels"),
        "allow_ties": ((bool,), None, "true or false"),
        "min_view_ms": ((int,), _non_negative, "a whole number of milliseconds, 0 or more"),
        "min_flips": ((int,), _non_negative, "a whole number, 0 or more"),
    },
    "session": {
        "trials": ((int,), _positive, "a positive whole number"),
        "practice_trials": ((int,), _non_negative, "a whole number, 0 or more"),
        "golden_rate": (
            (int, float),
            lambda v: 0 <= v < 1,
            "a share from 0 up to (not including) 1",
        ),
        "pause_every": ((int,), _non_negative, "a whole number, 0 (never) or more"),
    },
    "sampling": {
        "strategy": (
            (str,),
            lambda v: v in SAMPLING_STRATEGIES,
            "one of " + ", ".join(SAMPLING_STRATEGIES),
        ),
        "target_halfwidth": ((int, float), _positive, "positive percentage points"),
        "vote_budget": ((int,), _positive, "a positive whole number of votes"),
        "refresh_every": ((int,), _positive, "a positive whole number of votes"),
        "auto_close": ((bool,), None, "true or false"),
    },
    "screening": {
        "required": ((bool,), None, "true or false"),
        "colour": ((bool,), None, "true or false"),
        "tritan": ((bool,), None, "true or false"),
        "artifacts": ((bool,), None, "true or false"),
        "artifact_cutoff_level": ((int, float), _non_negative, "a level, 0 or more"),
    },
    "recruitment": {
        "platform": (
            (str,),
            lambda v: v in RaterPlatform.values,
            "one of " + ", ".join(RaterPlatform.values),
        ),
        "completion_code": ((str,), None, "text"),
        "screen_out_code": ((str,), None, "text"),
        "failed_attention_code": ((str,), None, "text"),
    },
}
COMMAND_CODEC_KEYS = CONFIG_KEYS  # what a [[codec]] of type "command" may set


class _Checker:
    def __init__(self, lines: dict[str, int]) -> None:
        self.lines = lines
        self.problems: list[SpecProblem] = []

    def line(self, key: str) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key.rpartition(".")[0]
        return None

    def add(self, key: str, message: str) -> None:
        self.problems.append(SpecProblem(key, self.line(key), message))

    def typed(self, key: str, value: Any, types: _Expect, expected: str) -> bool:
        # bool is an int in Python; a spec's true is never a number.
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            self.add(key, f"expected {expected}, got {value!r}")
            return False
        return True


def _check_text(checker: _Checker, data: Mapping[str, Any], key: str, *, required: bool) -> str:
    if key not in data:
        if required:
            checker.add(key, "missing: expected text")
        return ""
    value = data[key]
    if checker.typed(key, value, (str,), "text") and required and not value.strip():
        checker.add(key, "expected text, got an empty string")
    return value if isinstance(value, str) else ""


def _check_section(checker: _Checker, name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        checker.add(name, f"expected a table [{name}], got {value!r}")
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{name}.{key}"
        if key not in SECTIONS[name]:
            checker.add(path, "unknown key; expected one of " + ", ".join(SECTIONS[name]))
            continue
        types, valid, expected = SECTIONS[name][key]
        if checker.typed(path, item, types, expected):
            if valid is not None and not valid(item):
                checker.add(path, f"expected {expected}, got {item!r}")
            else:
                out[key] = item
    return out


def _check_bpp(checker: _Checker, key: str, value: Any) -> tuple[float, ...]:
    expected = "a list of increasing positive target bitrates (bits per pixel)"
    if not isinstance(value, list) or not value:
        checker.add(key, f"expected {expected}, got {value!r}")
        return ()
    if any(isinstance(v, bool) or not isinstance(v, int | float) or v <= 0 for v in value):
        checker.add(key, f"expected {expected}, got {value!r}")
        return ()
    if any(b <= a for a, b in zip(value, value[1:], strict=False)):
        checker.add(key, f"expected {expected}, got {value!r} (not increasing)")
        return ()
    return tuple(float(v) for v in value)


def _check_codecs(checker: _Checker, value: Any, builtin: Sequence[str]) -> list[CodecSpec]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        checker.add("codec", "expected [[codec]] tables")
        return []
    codecs: list[CodecSpec] = []
    for index, table in enumerate(value):
        base = f"codec[{index}]"
        name = table.get("name")
        if not isinstance(name, str) or not CODEC_NAME_PATTERN.match(name):
            checker.add(f"{base}.name", f"expected a codec name (a-z, 0-9, -_.), got {name!r}")
            continue
        kind = table.get("type", "builtin")
        allowed = {"name", "type", "bpp"}
        if kind == "command":
            allowed |= COMMAND_CODEC_KEYS
        elif kind != "builtin":
            checker.add(f"{base}.type", f"expected 'builtin' or 'command', got {kind!r}")
            continue
        for key in sorted(set(table) - allowed):
            checker.add(f"{base}.{key}", f"unknown key for a {kind} codec")
        if kind == "builtin" and name not in builtin:
            checker.add(
                f"{base}.name",
                f'expected a built-in codec ({", ".join(builtin)}) or type = "command", '
                f"got {name!r}",
            )
            continue
        bpp = _check_bpp(checker, f"{base}.bpp", table.get("bpp"))
        command = None
        if kind == "command":
            command = {k: v for k, v in table.items() if k in COMMAND_CODEC_KEYS}
            try:
                from codecs_adapter.external import command_codec_from_mapping

                command_codec_from_mapping(name, command)
            except ValueError as exc:
                checker.add(base, str(exc))
                continue
        if bpp:
            codecs.append(CodecSpec(name=name, bpp=bpp, command=command))
    names = [c.name for c in codecs]
    for name in sorted({n for n in names if names.count(n) > 1}):
        checker.add("codec", f"codec {name!r} is defined twice")
    return codecs


def _check_folder(checker: _Checker, key: str, value: Any, base: Path) -> Path | None:
    if not isinstance(value, str) or not value:
        checker.add(key, f"expected a folder path (relative to the spec), got {value!r}")
        return None
    folder = (base / value).resolve()
    if not folder.is_dir():
        checker.add(key, f"expected an existing folder, but {folder} does not exist")
        return None
    return folder


def parse_spec(text: str, *, base_dir: Path, source: str = "study.toml") -> StudySpec:
    """Validate a spec's text; folders are relative to ``base_dir``.

    Raises
    ------
    SpecError
        Listing every problem, each with its key, line and the expected value.
    """
    from codecs_adapter import available_codecs

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.14 gives the line as an attribute; before, only in the message.
        line = getattr(exc, "lineno", None)
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        if line is None and found:
            line = int(found.group(1))
        raise SpecError(source, [SpecProblem("(syntax)", line, str(exc))]) from exc
    checker = _Checker(key_lines(text))
    for key in sorted(set(data) - TOP_KEYS):
        checker.add(key, "unknown key; expected one of " + ", ".join(sorted(TOP_KEYS)))

    slug = _check_text(checker, data, "slug", required=True)
    if slug and not SLUG_PATTERN.match(slug):
        checker.add(
            "slug", f"expected lower-case letters, digits and '-' (at most 64), got {slug!r}"
        )
    title = _check_text(checker, data, "title", required=True)
    question = _check_text(checker, data, "question", required=False) or Study.DEFAULT_QUESTION
    instructions = _check_text(checker, data, "instructions", required=False)
    anchor = _check_text(checker, data, "anchor", required=True)

    images = None
    if "images" not in data:
        checker.add("images", "missing: expected the folder of the source images")
    else:
        images = _check_folder(checker, "images", data["images"], base_dir)
        if images is not None and not any(
            p.suffix.lower() in IMAGE_SUFFIXES for p in images.iterdir()
        ):
            checker.add("images", f"expected PNG source images in {images}, found none")

    sections = {
        name: _check_section(checker, name, data[name]) if name in data else {} for name in SECTIONS
    }
    codecs = _check_codecs(checker, data.get("codec", []), available_codecs())
    imports: list[Path] = []
    raw_imports = data.get("import", [])
    if not isinstance(raw_imports, list):
        checker.add("import", "expected [[import]] tables")
        raw_imports = []
    for index, table in enumerate(raw_imports):
        key = f"import[{index}]"
        if not isinstance(table, dict) or set(table) != {"folder"}:
            checker.add(key, "expected a table with one key, folder")
            continue
        folder = _check_folder(checker, f"{key}.folder", table["folder"], base_dir)
        if folder is not None:
            imports.append(folder)
    if not codecs and not imports:
        checker.add("codec", "expected at least one [[codec]] or [[import]]")
    if anchor and codecs and not imports and anchor not in {c.name for c in codecs}:
        names = ", ".join(c.name for c in codecs)
        checker.add("anchor", f"expected one of the study's codecs ({names}), got {anchor!r}")

    if checker.problems or images is None:
        raise SpecError(source, checker.problems)
    return StudySpec(
        slug=slug,
        title=title,
        anchor=anchor,
        images=images,
        question=question,
        instructions=instructions,
        codecs=tuple(codecs),
        imports=tuple(imports),
        text=text,
        **sections,
    )


def read_spec(path: str | Path) -> StudySpec:
    """Read and validate a spec file (folders in it are relative to the file).

    Raises
    ------
    SpecError
        The file cannot be read, or has problems (every one is listed).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(path.name, [SpecProblem("(file)", None, f"cannot be read: {exc}")]) from exc
    return parse_spec(text, base_dir=path.resolve().parent, source=path.name)
