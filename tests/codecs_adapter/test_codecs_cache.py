"""The encode cache: keys name exactly what makes the bytes; damaged entries are not trusted."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from skimage import data

from codecs_adapter import EncodeCache, encode_at, encode_key, encode_to_bpp, get_codec
from codecs_adapter.codecs import JpegCodec

IMAGE = np.ascontiguousarray(data.astronaut()[200:264, 200:264])
SOURCE = "0" * 64


class NewerJpeg(JpegCodec):
    """libjpeg-turbo as if another version were installed."""

    @property
    def version(self) -> str:
        return "99.0.0"


class OtherSubsampling(JpegCodec):
    fixed_options = MappingProxyType({**JpegCodec.fixed_options, "subsampling": "4:4:4"})


def test_equal_settings_in_any_numeric_type_share_a_key() -> None:
    jpeg = get_codec("jpeg")
    assert encode_key(jpeg, SOURCE, 20) == encode_key(jpeg, SOURCE, 20.0)
    assert encode_key(jpeg, SOURCE, 20) == encode_key(jpeg, SOURCE, np.float64(20))


def test_keys_change_with_anything_that_changes_the_bytes() -> None:
    jpeg = get_codec("jpeg")
    base = encode_key(jpeg, SOURCE, 20)
    others = {
        encode_key(jpeg, SOURCE, 20.5),
        encode_key(jpeg, "1" * 64, 20),
        encode_key(NewerJpeg(), SOURCE, 20),
        encode_key(OtherSubsampling(), SOURCE, 20),
        encode_key(get_codec("webp"), SOURCE, 20),
    }
    assert base not in others and len(others) == 5


def test_an_encode_is_stored_once_and_then_read(tmp_path: Path) -> None:
    cache = EncodeCache(tmp_path)
    jpeg = get_codec("jpeg")
    first, hit = cache.encode(jpeg, IMAGE, 40, source_sha256=SOURCE)
    assert not hit and len(cache) == 1
    second, hit = cache.encode(jpeg, IMAGE, 40.0, source_sha256=SOURCE)
    assert hit and second == first == jpeg.encode(IMAGE, 40)
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("damage", ["bits", "json"])
def test_a_damaged_entry_is_a_miss(tmp_path: Path, damage: str) -> None:
    cache = EncodeCache(tmp_path)
    jpeg = get_codec("jpeg")
    cache.encode(jpeg, IMAGE, 40, source_sha256=SOURCE)
    (entry,) = tmp_path.rglob(f"*.{damage}")
    entry.write_bytes(entry.read_bytes()[:-3])
    bitstream, hit = cache.encode(jpeg, IMAGE, 40, source_sha256=SOURCE)
    assert not hit and bitstream == jpeg.encode(IMAGE, 40)
    assert cache.load(encode_key(jpeg, SOURCE, 40)) == bitstream  # repaired


def test_rate_control_through_a_cache_replays_the_same_search(tmp_path: Path) -> None:
    webp = get_codec("webp")
    first = encode_to_bpp(webp, IMAGE, 1.5, cache=EncodeCache(tmp_path))
    assert first.cache_hits == 0
    cache = EncodeCache(tmp_path)
    second = encode_to_bpp(webp, IMAGE, 1.5, cache=cache)
    assert second == first
    assert second.cache_hits == second.encodes == first.encodes
    assert cache.stats.misses == 0
    point = encode_at(webp, IMAGE, second.setting, cache=cache)
    assert point.cache_hits == 1 and point.bitstream == first.bitstream


def test_a_cache_crosses_to_worker_processes_without_its_counters(tmp_path: Path) -> None:
    cache = EncodeCache(tmp_path)
    cache.encode(get_codec("jpeg"), IMAGE, 40, source_sha256=SOURCE)
    restored = pickle.loads(pickle.dumps(cache))  # noqa: S301 - our own bytes
    assert restored.root == tmp_path
    assert restored.stats.misses == 0 and len(restored) == 1
