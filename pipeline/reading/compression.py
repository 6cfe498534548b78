"""How the archive compresses a raw page: the codecs, plain functions of bytes.

Pages of one templated portal share most of their bytes (header, navigation,
footer, the article template itself), so a zstd dictionary trained on the
portal's own pages removes what every page repeats: on the replica's pages
about a fifth of zlib's size, in half its CPU, read back in a fifth (README, "Performance").
The dictionaries themselves are the archive's (pipeline/archive/rawpages.py
trains them and keeps them in its `dictionaries` table); here they are just
bytes with the id the archive gave them, so the reader process can compress
with the dictionary the archive will record.

Codecs, as a raw page's `codec` column names them:

- `zlib`: zlib at level 6, what the archive stored before dictionaries;
  still read, never written.
- `zstd`: a zstd frame, with the page's dictionary if it names one. Frames
  carry their content size and no dictionary id (the row names it).
"""
from __future__ import annotations

import hashlib
import threading
import zlib
from dataclasses import dataclass, field
from functools import cached_property

import zstandard

ZLIB = "zlib"
ZSTD = "zstd"
CODECS = (ZLIB, ZSTD)
# Calibrated on new replica articles against a dictionary trained on older pages (README,
# "Raw pages: bytes per stored page"): level 6 keeps a page under a quarter of zlib-6's bytes with
# room to spare at about half zlib's CPU; level 3 missed the quarter, level 9 cost zlib's CPU for
# 7 % fewer bytes. Reading back costs about the same at any level.
ZSTD_LEVEL = 6
# zstd's own default dictionary size (110 KB): on the replica's pages a 32 KB one gave ~10 % more.
DICTIONARY_BYTES = 112_640


class CorruptPage(ValueError):
    """Stored bytes that do not decompress with their codec (and dictionary)."""


@dataclass(frozen=True)
class Dictionary:
    """A trained dictionary as the archive keeps it: its row id and its bytes."""

    id: int
    data: bytes = field(repr=False)

    @cached_property  # hashing 110 KB on every page cost a crawl 0.1 ms a page
    def key(self) -> str:
        """Names this dictionary of this archive (ids repeat across archives, bytes do not)."""
        return f"{self.id}:{hashlib.sha256(self.data).hexdigest()[:16]}"


# zstandard's compressor and decompressor objects are not safe to share between threads (the web
# server reads raw pages in a thread pool); each thread keeps its own, one per dictionary.
_local = threading.local()


def _cached(kind: str, dictionary: bytes | None, make):
    cache = getattr(_local, kind, None)
    if cache is None:
        cache = {}
        setattr(_local, kind, cache)
    made = cache.get(dictionary)
    if made is None:
        if len(cache) >= 8:  # a few dictionaries at a time; a retrain is rare
            cache.clear()
        made = cache[dictionary] = make()
    return made


def _zstd_dict(dictionary: bytes) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_AUTO)


class Compressor:
    """Compresses pages with zstd, with `dictionary` if given; says which codec and dictionary."""

    def __init__(self, dictionary: Dictionary | None = None, level: int = ZSTD_LEVEL):
        self.dictionary = dictionary
        self.level = level

    @property
    def dictionary_id(self) -> int | None:
        return self.dictionary.id if self.dictionary is not None else None

    def compress(self, raw: bytes) -> bytes:
        data = self.dictionary.data if self.dictionary is not None else None
        return compress(raw, data, self.level)


def compress(raw: bytes, dictionary: bytes | None = None, level: int = ZSTD_LEVEL) -> bytes:
    """A zstd frame of `raw`, with the dictionary's bytes if given."""
    def make():
        kwargs = {"dict_data": _zstd_dict(dictionary)} if dictionary is not None else {}
        return zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=False,
                                        write_dict_id=False, **kwargs)
    return _cached(f"compressors{level}", dictionary, make).compress(raw)


def decompress(codec: str, body: bytes, dictionary: bytes | None = None) -> bytes:
    """A stored page's bytes as fetched; CorruptPage if they do not decompress."""
    if codec == ZLIB:
        try:
            return zlib.decompress(body)
        except (zlib.error, TypeError) as exc:
            raise CorruptPage(str(exc)) from exc
    if codec != ZSTD:
        raise CorruptPage(f"unknown codec {codec!r}")
    def make():
        kwargs = {"dict_data": _zstd_dict(dictionary)} if dictionary is not None else {}
        return zstandard.ZstdDecompressor(**kwargs)
    try:
        return _cached("decompressors", dictionary, make).decompress(body)
    except (zstandard.ZstdError, TypeError) as exc:
        raise CorruptPage(str(exc)) from exc


def train(samples: list[bytes], size: int = DICTIONARY_BYTES) -> bytes:
    """A zstd dictionary of at most `size` bytes trained on the pages; zstd wants about a hundred
    times its size in samples, and tolerates fewer (the dictionary is then smaller)."""
    total = sum(len(s) for s in samples)
    size = max(1024, min(size, total // 10))
    return zstandard.train_dictionary(size, samples, level=ZSTD_LEVEL).as_bytes()
