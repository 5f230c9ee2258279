"""Shared fixtures of the codecs_adapter tests: an external codec that really runs.

The "quantiser" is a tiny lossy codec written in Python and run as a separate program
through this interpreter, so tests of external codecs, ladders and caches start real
processes with real files, and can count real encoder calls (each appends a line to a
log file).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from codecs_adapter import CommandCodecConfig

#: Samples are divided by a whole step (the setting) and zlib-compressed. It reads and
#: writes binary PPM and needs nothing but the standard library, so it starts fast. When
#: given a log file (not "-"), the encoder appends "<pixels digest> <step>" to it on
#: every call.
QUANTISER = """
import hashlib, struct, sys, zlib

def read_ppm(path):
    data = open(path, "rb").read()
    magic, size, maxval, pixels = data.split(b"\\n", 3)
    width, height = map(int, size.split())
    return width, height, pixels

if sys.argv[1] == "encode":
    source, target, step, log = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    width, height, pixels = read_ppm(source)
    table = bytes(value // step for value in range(256))
    payload = zlib.compress(pixels.translate(table), 9)
    with open(target, "wb") as out:
        out.write(struct.pack(">III", width, height, step) + payload)
    if log != "-":
        with open(log, "a") as calls:
            calls.write(f"{hashlib.sha256(pixels).hexdigest()[:16]} {step}\\n")
else:
    source, target = sys.argv[2], sys.argv[3]
    data = open(source, "rb").read()
    width, height, step = struct.unpack(">III", data[:12])
    table = bytes(min(255, value * step + step // 2) for value in range(256))
    pixels = zlib.decompress(data[12:]).translate(table)
    with open(target, "wb") as out:
        out.write(b"P6\\n%d %d\\n255\\n" % (width, height) + pixels)
"""

#: Whole quantiser steps: 1 keeps every bit, 64 leaves 4 levels per channel.
STEP_MIN, STEP_MAX = 1, 64

type QuantiserFactory = Callable[..., CommandCodecConfig]


@pytest.fixture
def quantiser_config(tmp_path: Path) -> QuantiserFactory:
    """Build the quantiser's configuration; ``log=PATH`` records encoder calls there,
    other keywords override fields."""
    script = tmp_path / "quantiser.py"
    script.write_text(QUANTISER, encoding="utf-8")

    def build(*, log: Path | None = None, **changes: object) -> CommandCodecConfig:
        fields: dict[str, object] = {
            "name": "quant",
            "library": "quantiser.py",
            "version": "1.0",
            "encode": (
                sys.executable,
                str(script),
                "encode",
                "{input}",
                "{output}",
                "{quality}",
                str(log) if log else "-",
            ),
            "decode": (sys.executable, str(script), "decode", "{input}", "{output}"),
            "setting_name": "step",
            "setting_min": STEP_MIN,
            "setting_max": STEP_MAX,
            "higher_setting_more_bits": False,
            "setting_scale": "log",
            "extension": ".q",
            "input_format": "ppm",
            "decoded_extension": ".ppm",
        }
        fields.update(changes)
        return CommandCodecConfig(**fields)  # type: ignore[arg-type]

    return build
