"""The raw-page codecs (pipeline/reading/compression.py) and the reader compressing with the archive's
dictionary (spiders/reader.py): any bytes come back as they went in, and a page names the dictionary it
was compressed with."""
import asyncio
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.reading import compression
from pipeline.reading.compression import Compressor, CorruptPage, Dictionary
from pipeline.reading.records import Page
from spiders.reader import PageReader, read_article_page

FILES = Path(__file__).parent / "files"


@pytest.fixture(scope="module")
def dictionary() -> Dictionary:
    """A dictionary trained on replica pages, as the archive would train it."""
    from replica import generate, route
    from replica.render import build_index

    state = generate(150, seed=2)
    index = build_index(state)
    pages = [route(state, a.path, "", index).body for a in state.articles.values()]
    return Dictionary(7, compression.train(pages))


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=20_000))
def test_any_bytes_round_trip_without_a_dictionary(raw):
    assert compression.decompress(compression.ZSTD, compression.compress(raw)) == raw


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=20_000) | st.text(max_size=5_000).map(lambda t: t.encode("gb18030")))
def test_any_bytes_round_trip_with_a_dictionary(dictionary, raw):
    body = Compressor(dictionary).compress(raw)
    assert compression.decompress(compression.ZSTD, body, dictionary.data) == raw


@settings(max_examples=50, deadline=None)
@given(raw=st.binary(max_size=5_000))
def test_old_zlib_rows_still_read(raw):
    assert compression.decompress(compression.ZLIB, zlib.compress(raw, 6)) == raw


def test_a_page_names_its_codec_and_dictionary_and_needs_it(dictionary):
    raw = (FILES / "article-12873.html").read_bytes()
    at = datetime(2026, 2, 12, tzinfo=timezone.utc)
    plain = Page.of(raw, url="u", http_status=200, headers={}, fetched_at=at)
    page = Page.of(raw, url="u", http_status=200, headers={}, fetched_at=at, compressor=Compressor(dictionary))
    assert (plain.codec, plain.dictionary_id) == ("zstd", None)
    assert (page.codec, page.dictionary_id) == ("zstd", 7)
    assert plain.raw() == page.raw(dictionary.data) == raw
    assert len(page.body) < len(plain.body) / 2
    with pytest.raises(CorruptPage):
        page.raw()  # without its dictionary it is not the page
    with pytest.raises(CorruptPage):
        compression.decompress("zlib", page.body)
    with pytest.raises(CorruptPage):
        compression.decompress("brotli", page.body)


def test_the_reader_process_compresses_with_the_dictionary_it_was_given(dictionary):
    raw = (FILES / "article-12873.html").read_bytes()
    args = ("cpsia", raw, "http://127.0.0.1:8000/news/hyzx/2024/0101/1.html", 1, 200, {},
            datetime(2026, 2, 12, tzinfo=timezone.utc), "auto", False, dictionary.key)
    reader = PageReader(processes=1, dictionary=dictionary)
    try:
        async def read_twice():
            # Concurrent first pages all wait for the one sending of the dictionary.
            return await asyncio.gather(*(reader.run(read_article_page, *args) for _ in range(3)))
        pages = [read.page for read in asyncio.run(read_twice())]
    finally:
        reader.close()
    assert {(p.codec, p.dictionary_id) for p in pages} == {("zstd", 7)}
    assert all(p.raw(dictionary.data) == raw for p in pages)
    # In the crawl's own process (no reader processes) it is the same.
    here = PageReader(processes=0, dictionary=dictionary)
    assert asyncio.run(here.run(read_article_page, *args)).page.body == pages[0].body


def test_a_reader_never_compresses_with_a_dictionary_it_was_not_given(dictionary):
    other = Dictionary(8, dictionary.data[:-1] + b"x")
    raw = (FILES / "article-12873.html").read_bytes()
    with pytest.raises(LookupError):
        read_article_page("cpsia", raw, "http://127.0.0.1:8000/news/hyzx/2024/0101/1.html", 1, 200, {},
                          datetime(2026, 2, 12, tzinfo=timezone.utc), "auto", False, other.key)
