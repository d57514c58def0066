"""adapters/text_template: plain text chunks recognised by their bytes. A chunk is read through
the template only when it is provably the learned chunk with other text; everything else takes
the decoder's full path, and the decoder's output never depends on which path a chunk took."""
from __future__ import annotations

import orjson
import pytest

from ferryllm.protocols.openai import text_template
from ferryllm.protocols.openai.adapter_stream import StreamDecoder
from ferryllm.protocols.openai.text_template import TextTemplate
from tests.unit.test_openai_sse import FIXTURES, NAMES, REQUEST, render

BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def chunk(delta: dict, finish=None, **extra) -> bytes:
    return orjson.dumps({**BASE, **extra, "choices": [{"index": 0, "delta": delta,
                                                       "finish_reason": finish}]})


def learned(data: bytes) -> TextTemplate:
    template = TextTemplate()
    template.learn(data, orjson.loads(data))
    return template


def test_learns_from_a_plain_text_chunk_and_reads_other_text():
    template = learned(chunk({"content": "hello"}))
    assert template.prefix is not None
    assert template.text(chunk({"content": 'a "quoted" é 🚀\n'})) == 'a "quoted" é 🚀\n'
    assert template.text(chunk({"content": ""})) == ""


def test_learns_from_json_with_spaces():
    data = (b'{"id": "x", "choices": [{"index": 0, "delta": {"content": "hi"}, '
            b'"finish_reason": null}]}')
    template = learned(data)
    assert template.text(data.replace(b'"hi"', b'"\\u00e9t\\u00e9"')) == "été"


@pytest.mark.parametrize("data", [
    chunk({"content": "hi"}, usage={"prompt_tokens": 1}),
    chunk({"content": "hi"}, finish="stop"),
    chunk({"content": "hi", "refusal": None}),
    chunk({"content": ""}),
    chunk({"reasoning_content": "hmm"}),
    orjson.dumps({**BASE, "choices": [{"index": 0, "delta": {"content": "a"}},
                                      {"index": 1, "delta": {"content": "b"}}]}),
    # a key ending in an escaped quote spells the pattern too: two matches, so no template
    orjson.dumps({**BASE, 'x"delta': {"content": "hi"},
                  "choices": [{"index": 0, "delta": {"content": "hi"}}]}),
])
def test_does_not_learn_from_other_chunks(data):
    assert learned(data).prefix is None


@pytest.mark.parametrize("other", [
    chunk({"content": "a", "refusal": None}),  # same start, another field after the text
    chunk({"content": "a"}, finish="stop"),
    chunk({"content": "a"}, usage={"prompt_tokens": 1}),
])
def test_other_shapes_do_not_fit(other):
    assert learned(chunk({"content": "hello"})).text(other) is None


def test_a_string_with_trailing_tokens_does_not_fit():
    template = learned(chunk({"content": "hello"}))
    forged = template.prefix + b'"a","refusal":"no"' + template.suffix
    assert orjson.loads(forged)["choices"][0]["delta"] == {"content": "a", "refusal": "no"}
    assert template.text(forged) is None
    assert template.text(template.prefix + b"5" + template.suffix) is None


def test_gives_up_after_a_few_chunks_that_never_qualify():
    template = TextTemplate()
    data = chunk({"content": "hi"}, usage={"prompt_tokens": 1})
    while template.wants():
        template.learn(data, orjson.loads(data))
    assert template.prefix is None


def test_text_template_is_used_on_a_real_recording():
    decoder = StreamDecoder(REQUEST, "prov")
    decoder.feed((FIXTURES / "openai_text.sse").read_bytes())
    assert decoder._template.prefix is not None


@pytest.mark.parametrize("name", NAMES)
def test_decoder_output_is_the_same_without_the_template(name, monkeypatch):
    raw = (FIXTURES / f"{name}.sse").read_bytes()

    def events() -> list[str]:
        decoder = StreamDecoder(REQUEST, "prov")
        try:
            return [render(ev) for ev in [*decoder.feed(raw), *decoder.close()]]
        except Exception as exc:  # noqa: BLE001 - the same failure either way
            return [type(exc).__name__]

    with_template = events()
    monkeypatch.setattr(text_template, "_MAX_TRIES", 0)
    assert events() == with_template


def test_a_forged_chunk_after_the_template_keeps_every_field():
    """A chunk that starts and ends like the template but carries a refusal too: both reach the
    client, in the order the full path gives them."""
    first = chunk({"content": "hello"})
    template = learned(first)
    forged = template.prefix + b'" world","refusal":" no"' + template.suffix
    stream = b"".join(b"data: " + c + b"\n\n" for c in
                      (chunk({"role": "assistant", "content": ""}), first, forged,
                       chunk({}, finish="stop"))) + b"data: [DONE]\n\n"
    decoder = StreamDecoder(REQUEST, "prov")
    texts = [ev.text for ev in decoder.feed(stream) if hasattr(ev, "text")]
    assert "".join(texts) == "hello world no"


@pytest.mark.parametrize("name", NAMES)
def test_decoder_output_does_not_depend_on_where_reads_end(name):
    """Reads cut at random points (a frame split across reads, then whole frames, then a split
    again) give what one read gives: the template path and the line parser meet at any cut."""
    import random

    from tests.unit.test_openai_sse import expected, run
    raw = (FIXTURES / f"{name}.sse").read_bytes()
    want, want_error = expected(name)
    rng = random.Random(name)
    for _ in range(40):
        cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(1, 6))))
        got, error = run([raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])])
        assert error == want_error, cuts
        assert got == (want if error is None else want[:len(got)]), cuts


def test_plain_text_chunks_skip_the_full_parse_in_every_chunking(monkeypatch):
    """The point of the template: of a 20-chunk text stream only the opening chunks, the finish
    and the usage chunk are parsed whole, however the reads fall (each frame whole, a frame split
    across reads, everything in one read)."""
    from ferryllm.protocols.openai import adapter_stream as openai_sse

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": f"word {i} "}) for i in range(20)]
    chunks += [chunk({}, finish="stop"), orjson.dumps({**BASE, "choices": [], "usage": {
        "prompt_tokens": 3, "completion_tokens": 20}})]
    frames = [b"data: " + c + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
    raw = b"".join(frames)
    parsed = []
    real = openai_sse.load_object
    monkeypatch.setattr(openai_sse, "load_object", lambda data, what: parsed.append(data) or
                        real(data, what))
    for reads in ([raw], frames, [raw[i:i + 97] for i in range(0, len(raw), 97)]):
        parsed.clear()
        decoder = StreamDecoder(REQUEST, "prov")
        events = [ev for read in reads for ev in decoder.feed(read)] + list(decoder.close())
        assert "".join(ev.text for ev in events if hasattr(ev, "text")) == "".join(
            f"word {i} " for i in range(20))
        assert len(parsed) <= 6, (len(reads), len(parsed))
