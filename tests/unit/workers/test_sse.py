from services.workers.sse import ServerSentEvent, SSEDecoder


def test_events_split_across_chunks_and_line_endings() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"event: message_start\r")
    events += decoder.feed(b'\ndata: {"a":')
    events += decoder.feed(b" 1}\r\n\r\n: keep-alive\n\ndata: x\rdata: y\r\r\n")
    assert events == [
        ServerSentEvent(event="message_start", data='{"a": 1}'),
        ServerSentEvent(event="message", data="x\ny"),
    ]


def test_utf8_split_inside_a_character_is_reassembled() -> None:
    decoder = SSEDecoder()
    payload = "data: héllo 🚀\n\n".encode()
    cut = payload.index("🚀".encode()) + 2
    events = decoder.feed(payload[:cut]) + decoder.feed(payload[cut:])
    assert events == [ServerSentEvent(event="message", data="héllo 🚀")]


def test_event_without_data_is_not_dispatched_and_its_name_does_not_leak() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: ping\n\ndata: 1\n\n") == [ServerSentEvent("message", "1")]


def test_a_final_event_without_a_blank_line_is_kept_on_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.close() == [ServerSentEvent(event="message", data="[DONE]")]
    assert decoder.close() == []
