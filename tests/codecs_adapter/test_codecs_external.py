"""External codecs run real commands: a small quantising codec written in Python.

No mocks: every test starts real processes (this interpreter running a script), so the
temporary folders, placeholders, time limits and error reports are the real ones.
"""

from __future__ import annotations

import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from codecs_adapter import (
    CodecError,
    CommandCodec,
    CommandCodecConfig,
    encode_at,
    encode_to_bpp,
    load_command_codecs,
)
from codecs_adapter.external import STDERR_TAIL_CHARS

#: The conftest's factory of quantiser configurations.
type Quantiser = Callable[..., CommandCodecConfig]

PHOTO = np.ascontiguousarray(data.astronaut()[200:248, 200:264])


def python_command(code: str, *extra: str) -> tuple[str, ...]:
    """A command running a snippet of Python, with placeholders as extra arguments."""
    return (sys.executable, "-c", code, *extra)


def test_a_command_codec_round_trips_through_real_processes(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    codec = CommandCodec(quantiser_config())
    bitstream = codec.encode(PHOTO, 8)
    decoded = codec.decode(bitstream)
    assert decoded.shape == PHOTO.shape
    # The quantiser's error is at most half a step.
    assert np.abs(decoded.astype(int) - PHOTO.astype(int)).max() <= 4
    assert np.any(decoded != PHOTO)
    assert codec.encode(PHOTO, 8) == bitstream  # deterministic
    assert len(codec.encode(PHOTO, 32)) < len(bitstream)  # coarser step, fewer bits


def test_rate_control_and_records_work_for_a_command_codec(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    codec = CommandCodec(quantiser_config())
    point = encode_at(codec, PHOTO, 16)
    assert (point.codec, point.library, point.version) == ("quant", "quantiser.py", "1.0")
    assert point.settings["step"] == 16
    assert "quantiser.py" in str(point.settings["encode_command"])
    target = point.bpp
    searched = encode_to_bpp(codec, PHOTO, target)
    assert searched.bpp == pytest.approx(target, rel=0.03)


def test_settings_reach_the_command_as_text_and_other_arguments_verbatim(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    # No shell: "$(...)", ";" and quotes are plain characters for the program.
    seen = tmp_path / "argv.txt"
    code = (
        "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(repr(sys.argv[2:]));"
        "pathlib.Path(sys.argv[3]).write_bytes(b'x')"
    )
    hostile = "$(touch PWNED); echo 'hi' > owned"
    config = quantiser_config(
        encode=python_command(code, str(seen), "{input}", "{output}", "q={quality}", hostile),
    )
    CommandCodec(config).encode(PHOTO, 12)
    arguments = eval(seen.read_text(encoding="utf-8"))  # noqa: S307 - our own repr of a list
    assert arguments[2] == "q=12"
    assert arguments[3] == hostile
    assert arguments[0].endswith("input.ppm") and Path(arguments[0]).is_absolute()
    assert not list(tmp_path.rglob("PWNED")) and not list(tmp_path.rglob("owned"))


@pytest.mark.parametrize(
    ("input_format", "signature"),
    [("ppm", b"P6\n64 48\n255\n"), ("png", b"\x89PNG\r\n\x1a\n")],
)
def test_the_encoder_gets_the_image_in_its_format_and_its_size(
    tmp_path: Path, quantiser_config: Quantiser, input_format: str, signature: bytes
) -> None:
    seen = tmp_path / "seen.bin"
    code = (
        "import sys, pathlib; head = pathlib.Path(sys.argv[1]).read_bytes()[:15];"
        "pathlib.Path(sys.argv[2]).write_bytes(sys.argv[4].encode() + b' ' + head);"
        "pathlib.Path(sys.argv[3]).write_bytes(b'x')"
    )
    config = quantiser_config(
        encode=python_command(
            code, "{input}", str(seen), "{output}", "{width}x{height}", "{quality}"
        ),
        input_format=input_format,
    )
    CommandCodec(config).encode(PHOTO, 3)
    size, header = seen.read_bytes().split(b" ", 1)
    assert size == b"64x48"
    assert header.startswith(signature)


def test_a_failing_encoder_reports_its_command_and_stderr(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    code = (
        "import sys; sys.stderr.write('encoder: bad quantiser ' + sys.argv[3] + '\\n'); sys.exit(3)"
    )
    config = quantiser_config(encode=python_command(code, "{input}", "{output}", "{quality}"))
    with pytest.raises(CodecError) as caught:
        CommandCodec(config).encode(PHOTO, 5)
    message = str(caught.value)
    assert "quant: encoding at step=5" in message
    assert "exit status 3" in message
    assert sys.executable in message and "import sys" in message  # the command line
    assert "encoder: bad quantiser 5" in message  # its stderr


def test_long_stderr_is_cut_to_its_end(tmp_path: Path, quantiser_config: Quantiser) -> None:
    code = "import sys; sys.stderr.write('x' * 100000 + 'THE END'); sys.exit(1)"
    config = quantiser_config(encode=python_command(code, "{input}", "{output}", "{quality}"))
    with pytest.raises(CodecError) as caught:
        CommandCodec(config).encode(PHOTO, 5)
    message = str(caught.value)
    assert message.endswith("THE END")
    assert len(message) < STDERR_TAIL_CHARS + 1000


def test_an_encoder_past_its_time_limit_is_killed_with_what_it_started(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    child_pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time;"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "open(sys.argv[1], 'w').write(str(child.pid)); sys.stderr.write('still working');"
        "sys.stderr.flush(); time.sleep(60)"
    )
    config = quantiser_config(
        encode=python_command(code, str(child_pid_file), "{input}", "{output}", "{quality}"),
        timeout_seconds=2.0,
    )
    started = time.monotonic()
    with pytest.raises(CodecError, match=r"timed out after 2 s and was killed") as caught:
        CommandCodec(config).encode(PHOTO, 5)
    assert time.monotonic() - started < 20
    assert "still working" in str(caught.value)
    child = int(child_pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _is_running(child):
        time.sleep(0.05)
    assert not _is_running(child)


def _is_running(pid: int) -> bool:
    """True if a process exists and is not a zombie."""
    status = Path(f"/proc/{pid}/stat")
    try:
        return status.read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_an_encoder_that_writes_nothing_is_an_error(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    config = quantiser_config(encode=python_command("pass", "{input}", "{output}", "{quality}"))
    with pytest.raises(CodecError, match=r"wrote no output file bitstream\.q"):
        CommandCodec(config).encode(PHOTO, 5)


def test_a_missing_program_is_an_error_naming_it(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    config = quantiser_config(
        encode=(str(tmp_path / "no-such-encoder"), "{input}", "{output}", "{quality}")
    )
    with pytest.raises(CodecError, match="cannot start command: .*no-such-encoder"):
        CommandCodec(config).encode(PHOTO, 5)


def test_a_decoder_output_that_is_not_an_image_is_an_error(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    code = "import sys; open(sys.argv[2], 'w').write('not an image')"
    config = quantiser_config(decode=python_command(code, "{input}", "{output}"))
    codec = CommandCodec(config)
    bitstream = CommandCodec(quantiser_config()).encode(PHOTO, 5)
    with pytest.raises(CodecError, match="quant: decoding: the decoder's output is not"):
        codec.decode(bitstream)


def test_each_call_runs_in_its_own_temporary_folder_which_is_removed(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    seen = tmp_path / "cwd.txt"
    code = (
        "import os, sys, pathlib; pathlib.Path(sys.argv[1]).open('a').write(os.getcwd() + '\\n');"
        "pathlib.Path(sys.argv[2]).write_bytes(b'x')"
    )
    config = quantiser_config(
        encode=python_command(code, str(seen), "{output}", "{input}", "{quality}")
    )
    codec = CommandCodec(config)
    codec.encode(PHOTO, 5)
    codec.encode(PHOTO, 6)
    first, second = seen.read_text().split()
    assert first != second
    assert not Path(first).exists() and not Path(second).exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"encode": ("enc", "{input}", "{quality}")}, "encode command lacks {output}"),
        ({"encode": ("enc", "{input}", "{output}")}, "encode command lacks {quality}"),
        ({"decode": ("dec", "{output}")}, "decode command lacks {input}"),
        ({"decode": ("dec", "{input}", "{output}", "{quality}")}, "unknown placeholders"),
        ({"encode": ("enc", "{input}", "{output}", "{qualty}")}, "unknown placeholders"),
        ({"name": "jpeg"}, "taken by a built-in codec"),
        ({"name": "../evil"}, "name must be"),
        ({"setting_min": 10, "setting_max": 5}, "not a finite, non-empty interval"),
        ({"setting_min": 0}, "log-scaled setting needs setting_min > 0"),
        ({"timeout_seconds": 0}, "timeout_seconds must be positive"),
        ({"extension": "bin"}, "extension must look like"),
    ],
)
def test_bad_configurations_are_refused_with_the_reason(
    quantiser_config: Quantiser, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        quantiser_config(**changes)


def test_codecs_load_from_a_toml_file(tmp_path: Path, quantiser_config: Quantiser) -> None:
    config = quantiser_config()
    quoted = ", ".join(f"'{argument}'" for argument in config.encode)
    decode = ", ".join(f"'{argument}'" for argument in config.decode)
    path = tmp_path / "codecs.toml"
    path.write_text(
        "[codec.quant]\n"
        "library = 'quantiser.py'\nversion = '1.0'\n"
        f"encode = [{quoted}]\ndecode = [{decode}]\n"
        "setting_name = 'step'\nsetting_min = 1\nsetting_max = 64\n"
        "higher_setting_more_bits = false\nsetting_scale = 'log'\nextension = '.q'\n"
        "input_format = 'ppm'\ndecoded_extension = '.ppm'\n"
        "[codec.quant.options]\npreset = 'default'\n",
        encoding="utf-8",
    )
    codecs = load_command_codecs(path)
    assert list(codecs) == ["quant"]
    codec = codecs["quant"]
    assert codec.settings(4)["preset"] == "default"
    assert codec.encode(PHOTO, 4) == CommandCodec(config).encode(PHOTO, 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[codec.x]\nlibrary = 'l'\n", "missing keys"),
        ("[codec.x]\nbogus = 1\n", "unknown keys"),
        ("not toml at all [", "not valid TOML"),
        ("[other]\n", "no \\[codec.NAME\\] tables"),
    ],
)
def test_bad_configuration_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "codecs.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_command_codecs(path)


def test_a_command_codec_survives_pickling_for_worker_processes(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    codec = CommandCodec(quantiser_config())
    restored = pickle.loads(pickle.dumps(codec))  # noqa: S301 - our own bytes
    assert restored.config == codec.config
    assert restored.encode(PHOTO, 9) == codec.encode(PHOTO, 9)
