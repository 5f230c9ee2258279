"""Codecs that run as external programs: reference software and learned codecs' own CLIs.

VVC (vvenc/vvdec), ECM, AV2 (avm), the JPEG AI reference software or a learned codec's
command line are configured, not programmed: an encoder and a decoder command, each a
list of arguments with placeholders, and a description of the swept setting. A
:class:`CommandCodec` then behaves like any built-in codec (rate control, ladders, the
cache), because it is one.

Each call runs in a fresh temporary directory, which is also the working directory of the
command: the encoder reads the image from ``{input}`` and writes the bitstream to
``{output}``; the decoder reads the bitstream from ``{input}`` and writes the
reconstruction to ``{output}``. Placeholders are replaced inside each argument:

==============  =========================================================================
placeholder     value
==============  =========================================================================
``{input}``     absolute path of the input file
``{output}``    absolute path where the command must write its output
``{quality}``   the swept setting (a whole number for integer settings), whatever its
                :attr:`~CommandCodecConfig.setting_name`
``{width}``     image width in pixels (encoder only; for tools that need it)
``{height}``    image height in pixels (encoder only)
==============  =========================================================================

Commands are never run through a shell (no ``shell=True``): an argument holding spaces or
quotes reaches the program as it is. A command that exits with a non-zero status, runs
past its time limit (its whole process group is killed), or writes no output raises
:class:`~codecs_adapter.codecs.CodecError` with the command line and the end of its
standard error.

Configurations come from a TOML file (see :func:`load_command_codecs` and
docs/codecs.md)::

    [codec.vvc]
    library = "vvenc/vvdec"
    version = "1.13.1"
    encode = ["vvencapp", "-i", "{input}", "-s", "{width}x{height}", "--qp", "{quality}",
              "-o", "{output}"]
    decode = ["vvdecapp", "-b", "{input}", "-o", "{output}"]
    setting_name = "qp"
    setting_min = 0
    setting_max = 63
    higher_setting_more_bits = false
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import signal
import subprocess
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

import numpy as np

from codecs_adapter.codecs import BUILTIN_CODECS, Codec, CodecError, OptionValue, SettingScale
from codecs_adapter.images import RGB8, load_rgb, png_bytes

#: Formats in which the encoder can be given the image: PNG (written by
#: :func:`~codecs_adapter.images.png_bytes`, no metadata) or binary PPM (P6), which most
#: reference software reads.
type InputFormat = Literal["png", "ppm"]
INPUT_FORMATS: Final = ("png", "ppm")

#: Placeholders that may appear in command templates.
ENCODER_PLACEHOLDERS: Final = ("{input}", "{output}", "{quality}", "{width}", "{height}")
DECODER_PLACEHOLDERS: Final = ("{input}", "{output}")

#: Default time limit of one command: reference software (ECM, JPEG AI) takes minutes
#: per image.
DEFAULT_TIMEOUT_SECONDS: Final = 600.0

#: How much of a failing command's standard error goes into the error message.
STDERR_TAIL_CHARS: Final = 4000

#: Extension of the file handed to the decoder when the configuration names none.
DEFAULT_BITSTREAM_EXTENSION: Final = ".bin"

#: Extension of the file the decoder must write (any format Pillow reads works).
DEFAULT_DECODED_EXTENSION: Final = ".png"

#: Largest sample value of a binary PPM written here.
_PPM_MAXVAL: Final = 255

#: Keys a ``[codec.NAME]`` table of a configuration file may hold.
CONFIG_KEYS: Final = frozenset(
    {
        "library",
        "version",
        "encode",
        "decode",
        "setting_name",
        "setting_min",
        "setting_max",
        "setting_is_integer",
        "higher_setting_more_bits",
        "setting_scale",
        "input_format",
        "extension",
        "decoded_extension",
        "timeout_seconds",
        "options",
    }
)


@dataclass(frozen=True)
class CommandCodecConfig:
    """Everything that defines an external codec.

    Attributes
    ----------
    name : str
        Codec name used in ladders and manifests (``"vvc"``, ``"pico"``); must not be a
        built-in codec's name.
    library, version : str
        The software and its version, recorded with every stimulus (and part of the
        cache key: change the version when the binary changes).
    encode, decode : tuple of str
        Argument lists with placeholders (see the module docstring); the first is the
        program.
    setting_name : str
        Name of the swept setting as the tool calls it (``"qp"``, ``"quality"``, ...).
    setting_min, setting_max : float
        Inclusive range of the setting.
    setting_is_integer : bool
        Whether only whole values are valid.
    higher_setting_more_bits : bool
        Direction of the setting (False for a quantiser such as QP).
    setting_scale : {"linear", "log"}
        How rate control spaces its search (``"log"`` for multiplicative knobs).
    input_format : {"png", "ppm"}
        Format of the ``{input}`` file given to the encoder.
    extension : str
        Extension of the bitstream file (``".266"``, ``".bin"``), with the dot.
    decoded_extension : str
        Extension of the file the decoder writes (``".png"`` or ``".ppm"``).
    timeout_seconds : float
        Time limit of each command.
    options : Mapping[str, OptionValue]
        Fixed options to record with every stimulus (informational; the commands
        themselves carry them).
    """

    name: str
    library: str
    version: str
    encode: tuple[str, ...]
    decode: tuple[str, ...]
    setting_min: float
    setting_max: float
    setting_name: str = "quality"
    setting_is_integer: bool = True
    higher_setting_more_bits: bool = True
    setting_scale: SettingScale = "linear"
    input_format: InputFormat = "png"
    extension: str = DEFAULT_BITSTREAM_EXTENSION
    decoded_extension: str = DEFAULT_DECODED_EXTENSION
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    options: Mapping[str, OptionValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise ValueError(f"codec {self.name!r}: " + "; ".join(problems))


def _config_problems(config: CommandCodecConfig) -> list[str]:
    """Every reason a configuration is unusable (empty if none)."""
    problems: list[str] = []
    if not config.name or not config.name.replace("_", "").replace("-", "").isalnum():
        problems.append("name must be letters, digits, '-' or '_'")
    if config.name in {codec_type.name for codec_type in BUILTIN_CODECS}:
        problems.append("name is taken by a built-in codec")
    for role, command, allowed in (
        ("encode", config.encode, ENCODER_PLACEHOLDERS),
        ("decode", config.decode, DECODER_PLACEHOLDERS),
    ):
        if not command or not all(isinstance(argument, str) for argument in command):
            problems.append(f"{role} must be a non-empty list of strings")
            continue
        joined = " ".join(command)
        for placeholder in ("{input}", "{output}"):
            if placeholder not in joined:
                problems.append(f"{role} command lacks {placeholder}")
        if role == "encode" and "{quality}" not in joined:
            problems.append("encode command lacks {quality}")
        unknown = _unknown_placeholders(command, allowed)
        if unknown:
            problems.append(f"{role} command has unknown placeholders {sorted(unknown)}")
    low, high = config.setting_min, config.setting_max
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        problems.append(f"setting range [{low}, {high}] is not a finite, non-empty interval")
    if config.setting_scale == "log" and not low > 0:
        problems.append("a log-scaled setting needs setting_min > 0")
    if config.setting_scale not in ("linear", "log"):
        problems.append(f"setting_scale must be 'linear' or 'log', not {config.setting_scale!r}")
    if config.input_format not in INPUT_FORMATS:
        problems.append(f"input_format must be one of {INPUT_FORMATS}")
    for key in ("extension", "decoded_extension"):
        value = getattr(config, key)
        if not (value.startswith(".") and len(value) > 1 and "/" not in value):
            problems.append(f"{key} must look like '.bin'")
    if not (math.isfinite(config.timeout_seconds) and config.timeout_seconds > 0):
        problems.append("timeout_seconds must be positive")
    return problems


def _unknown_placeholders(command: Sequence[str], allowed: Sequence[str]) -> set[str]:
    """Brace-delimited words in a command that are not known placeholders."""
    found: set[str] = set()
    for argument in command:
        start = argument.find("{")
        while start != -1:
            end = argument.find("}", start)
            if end == -1:
                break
            word = argument[start : end + 1]
            if word not in allowed and word[1:-1].isidentifier():
                found.add(word)
            start = argument.find("{", end)
    return found


def _fill(command: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Replace the placeholders of a command template (only the known ones)."""
    filled = []
    for argument in command:
        for placeholder, value in values.items():
            argument = argument.replace(placeholder, value)
        filled.append(argument)
    return filled


def _ppm_bytes(rgb: RGB8) -> bytes:
    """Binary PPM (P6) of an image."""
    height, width, _ = rgb.shape
    return f"P6\n{width} {height}\n{_PPM_MAXVAL}\n".encode("ascii") + rgb.tobytes()


def _run(command: list[str], *, cwd: Path, timeout: float, what: str) -> None:
    """Run one command without a shell; CodecError naming it on any failure.

    The command gets its own process group, so that a time-out kills whatever it
    started too (wrapper scripts often start the real encoder as a child).
    """
    line = shlex.join(command)
    try:
        process = subprocess.Popen(  # noqa: S603 - argument list from the researcher's config
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise CodecError(f"{what}: cannot start command: {line}: {exc}") from exc
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        raise CodecError(
            f"{what}: command timed out after {timeout:g} s and was killed: {line}\n"
            f"stderr:\n{_tail(stderr)}"
        ) from exc
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if process.returncode != 0:
        raise CodecError(
            f"{what}: command failed with exit status {process.returncode}: {line}\n"
            f"stderr:\n{_tail(stderr)}"
        )


def _tail(stderr: bytes) -> str:
    """The end of a command's standard error, decoded leniently."""
    text = stderr.decode("utf-8", errors="replace").strip()
    if len(text) > STDERR_TAIL_CHARS:
        text = "..." + text[-STDERR_TAIL_CHARS:]
    return text or "(empty)"


class CommandCodec(Codec):
    """A codec whose encoder and decoder are external commands (see the module docstring).

    Parameters
    ----------
    config : CommandCodecConfig
        What to run and how the setting behaves.
    """

    def __init__(self, config: CommandCodecConfig) -> None:
        self.config = config
        self.name = config.name
        self.library = config.library
        self.extension = config.extension
        self.setting_name = config.setting_name
        self.setting_min = config.setting_min
        self.setting_max = config.setting_max
        self.setting_is_integer = config.setting_is_integer
        self.higher_setting_more_bits = config.higher_setting_more_bits
        self.setting_scale = config.setting_scale
        # The commands are part of what makes the bytes, so they are recorded (and
        # enter the cache key) like any fixed option.
        self.fixed_options = MappingProxyType(
            {
                **config.options,
                "encode_command": shlex.join(config.encode),
                "decode_command": shlex.join(config.decode),
                "input_format": config.input_format,
            }
        )

    def __reduce__(self) -> tuple[object, tuple[CommandCodecConfig]]:
        # Rebuilt from its configuration in worker processes (a mapping proxy does not
        # pickle).
        return (CommandCodec, (self.config,))

    @property
    def version(self) -> str:
        """The version given in the configuration."""
        return self.config.version

    def _setting_text(self, setting: float) -> str:
        if self.setting_is_integer:
            return str(int(setting))
        return repr(float(setting))

    def _encode(self, rgb: RGB8, setting: float) -> bytes:
        height, width, _ = rgb.shape
        with tempfile.TemporaryDirectory(prefix=f"codec-{self.name}-") as folder:
            work = Path(folder)
            source = work / f"input.{self.config.input_format}"
            source.write_bytes(
                png_bytes(rgb) if self.config.input_format == "png" else _ppm_bytes(rgb)
            )
            output = work / f"bitstream{self.extension}"
            values = {
                "{input}": str(source),
                "{output}": str(output),
                "{quality}": self._setting_text(setting),
                "{width}": str(width),
                "{height}": str(height),
            }
            command = _fill(self.config.encode, values)
            what = f"{self.name}: encoding at {self.setting_name}={self._setting_text(setting)}"
            _run(command, cwd=work, timeout=self.config.timeout_seconds, what=what)
            return _read_output(output, command, what)

    def _decode(self, data: bytes) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix=f"codec-{self.name}-") as folder:
            work = Path(folder)
            bitstream = work / f"bitstream{self.extension}"
            bitstream.write_bytes(data)
            output = work / f"decoded{self.config.decoded_extension}"
            command = _fill(
                self.config.decode, {"{input}": str(bitstream), "{output}": str(output)}
            )
            what = f"{self.name}: decoding"
            _run(command, cwd=work, timeout=self.config.timeout_seconds, what=what)
            _read_output(output, command, what)
            try:
                return load_rgb(output)
            except Exception as exc:
                raise CodecError(
                    f"{what}: the decoder's output is not a readable RGB image: {exc}\n"
                    f"command: {shlex.join(command)}"
                ) from exc


def _read_output(path: Path, command: list[str], what: str) -> bytes:
    """The bytes a command had to write; CodecError if it wrote none."""
    if not path.is_file():
        raise CodecError(f"{what}: command wrote no output file {path.name}: {shlex.join(command)}")
    data = path.read_bytes()
    if not data:
        raise CodecError(f"{what}: command wrote an empty {path.name}: {shlex.join(command)}")
    return data


def command_codec_from_mapping(name: str, table: Mapping[str, Any]) -> CommandCodec:
    """Build a codec from one ``[codec.NAME]`` table of a configuration file.

    Parameters
    ----------
    name : str
        The codec's name.
    table : Mapping
        Keys as the fields of :class:`CommandCodecConfig` (``encode`` and ``decode`` as
        lists of strings; ``options`` as a table).

    Returns
    -------
    CommandCodec

    Raises
    ------
    ValueError
        If a key is unknown, a required key is missing, or a value is invalid; the
        message names the codec and every problem found.
    """
    unknown = sorted(set(table) - CONFIG_KEYS)
    if unknown:
        raise ValueError(f"codec {name!r}: unknown keys {unknown}")
    missing = sorted(
        {"library", "version", "encode", "decode", "setting_min", "setting_max"} - set(table)
    )
    if missing:
        raise ValueError(f"codec {name!r}: missing keys {missing}")
    values = dict(table)
    for key in ("encode", "decode"):
        if not isinstance(values[key], list):
            raise ValueError(f"codec {name!r}: {key} must be a list of strings")
        values[key] = tuple(values[key])
    for key in ("setting_min", "setting_max", "timeout_seconds"):
        if key in values:
            if isinstance(values[key], bool) or not isinstance(values[key], int | float):
                raise ValueError(f"codec {name!r}: {key} must be a number")
            values[key] = float(values[key])
    values["options"] = dict(values.get("options", {}))
    return CommandCodec(CommandCodecConfig(name=name, **values))


def load_command_codecs(path: str | os.PathLike[str]) -> dict[str, CommandCodec]:
    """Read external codecs from a TOML file of ``[codec.NAME]`` tables.

    Parameters
    ----------
    path : str or os.PathLike
        The configuration file.

    Returns
    -------
    dict
        Codec name to codec, in file order.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not valid TOML, has no ``codec`` tables, or a table is invalid.
    """
    source = Path(path)
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from exc
    tables = document.get("codec")
    if not isinstance(tables, dict) or not tables:
        raise ValueError(f"{source}: no [codec.NAME] tables")
    return {name: command_codec_from_mapping(name, table) for name, table in tables.items()}
