"""The incremental SSE parser: every line ending, field form and chunking gives the same events."""
import pytest

from ferryllm.errors import UpstreamProtocolError
from ferryllm.sse import SSEEvent, SSEParser
from tests.chunking import chunkings


def parse(chunks):
    parser = SSEParser()
    out = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    out.extend(parser.close())
    return [(e.event, e.data, e.id) for e in out]


STREAM = (
    "event: message_start\ndata: {\"a\":1}\n\n"
    ": a comment line\n\n"
    "data:no-space\n\n"
    "event: multi\r\ndata: line one\r\ndata: line two\r\n\r\n"
    "id: 7\rdata: cr only é世🚀\r\r"
    "retry: 100\ndata: [DONE]\n\n"
).encode()

EXPECTED = [
    (b"message_start", b'{"a":1}', None),
    (b"message", b"no-space", None),
    (b"multi", b"line one\nline two", None),
    (b"message", "cr only é世🚀".encode(), b"7"),
    (b"message", b"[DONE]", b"7"),
]


def test_every_chunking_gives_the_same_events():
    for chunks in chunkings(STREAM):
        assert parse(chunks) == EXPECTED


def test_crlf_split_between_reads():
    assert parse([b"data: x\r", b"\n\r", b"\n"]) == [(b"message", b"x", None)]


def test_multibyte_split_survives():
    data = "data: 世界\n\n".encode()
    for i in range(len(data)):
        assert parse([data[:i], data[i:]]) == [(b"message", "世界".encode(), None)]


def test_final_event_without_blank_line_is_completed_on_close():
    assert parse([b"data: last"]) == [(b"message", b"last", None)]


def test_comment_only_and_blank_lines_give_no_event():
    assert parse([b": keep-alive\n\n\n\n"]) == []


def test_event_name_resets_after_dispatch():
    events = parse([b"event: ping\ndata: {}\n\ndata: x\n\n"])
    assert events == [(b"ping", b"{}", None), (b"message", b"x", None)]


def test_bom_is_skipped():
    assert parse([b"\xef\xbb\xbfdata: x\n\n"]) == [(b"message", b"x", None)]


def test_unbounded_line_is_refused(monkeypatch):
    import ferryllm.sse as sse
    monkeypatch.setattr(sse, "MAX_LINE", 64)
    parser = SSEParser()
    with pytest.raises(UpstreamProtocolError):
        for _ in range(10):
            parser.feed(b"x" * 10)


def test_event_dataclass_defaults():
    assert SSEEvent(b"message", b"x").id is None


LF_FRAMES = [
    b'data: {"n":1}\n\n', b"data: [DONE]\n\n", b": keep-alive\n\n", b"event: ping\ndata: {}\n\n",
    b"data: a\ndata: b\n\n", b"id: 9\ndata: with id\n\n", b"\n", b"data:tight\n\n",
    "data: é世🚀\n\n".encode(), b"event: x\n\n", b"data: \n\n",
]


def test_whole_frame_fast_path_matches_the_line_parser():
    """All at once (whole frames: the fast path) and byte by byte (the line parser only) agree
    on every sequence of \\n-framed events, one-line data frames mixed with every other kind."""
    import random
    rng = random.Random(6)
    for _ in range(300):
        stream = b"".join(rng.choice(LF_FRAMES) for _ in range(rng.randint(1, 8)))
        if rng.random() < 0.3:
            stream += b"data: unfinished"
        byte_by_byte = parse([stream[i:i + 1] for i in range(len(stream))])
        assert parse([stream]) == byte_by_byte
        cut = rng.randint(0, len(stream))
        assert parse([stream[:cut], stream[cut:]]) == byte_by_byte


def test_fast_path_keeps_the_last_event_id():
    assert parse([b"id: 4\n\ndata: a\n\ndata: b\n\n"]) == [(b"message", b"a", b"4"),
                                                         (b"message", b"b", b"4")]


def test_data_frames_takes_the_leading_one_line_frames_and_leaves_the_rest_unread():
    import random
    rng = random.Random(7)
    for _ in range(300):
        stream = b"".join(rng.choice(LF_FRAMES) for _ in range(rng.randint(1, 8)))
        if rng.random() < 0.3:
            stream += b"data: unfinished"
        parser = SSEParser()
        payloads, rest = parser.data_frames(stream)
        assert stream.endswith(rest)
        # what it took is exactly the events the full parser gives for those bytes
        taken = stream[:len(stream) - len(rest)]
        assert [(b"message", p, None) for p in payloads] == parse([taken])
        assert all(b"\n" not in p for p in payloads)
        # and the rest, read on, gives what reading all at once gives
        assert parse([stream]) == [*[(b"message", p, None) for p in payloads],
                                   *[tuple(ev) for ev in parser.feed(rest) + parser.close()]]


def test_data_frames_reads_nothing_while_a_frame_is_pending():
    parser = SSEParser()
    assert parser.feed(b"data: a") == [] and not parser.idle()
    assert parser.data_frames(b"\n\ndata: b\n\n") == ([], b"\n\ndata: b\n\n")
    named = SSEParser()
    named.feed(b"event: error\n")
    assert not named.idle()
    assert named.data_frames(b"data: x\n\n") == ([], b"data: x\n\n")
