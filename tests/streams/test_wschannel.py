"""The WebSocket channel protocol: framing, resize, outcomes, port-forward channels (pure)."""

from __future__ import annotations

import json

import pytest

from kybernetes.streams import wschannel as wc


@pytest.mark.parametrize("channel,data", [
    pytest.param(0, b"hello", id="stdin"),
    pytest.param(1, b"", id="empty-stdout"),
    pytest.param(2, bytes(range(256)), id="binary-stderr"),
    pytest.param(255, b"\x00", id="v5-close-stdin"),
])
def test_binary_round_trip(channel: int, data: bytes) -> None:
    msg = wc.encode(channel, data)
    assert isinstance(msg, bytes) and msg[0] == channel
    assert wc.decode(msg) == (channel, data)


def test_base64_round_trip_is_a_text_frame() -> None:
    msg = wc.encode(1, b"\xff\x00hi", b64=True)
    assert msg == "1/wBoaQ=="
    assert wc.decode(msg, b64=True) == (1, b"\xff\x00hi")
    with pytest.raises(wc.ProtocolError):
        wc.encode(255, b"\x00", b64=True)


def test_text_frame_in_binary_protocol_like_the_python_client_sends() -> None:
    # the Python client's write_channel(0, "ls\n") sends chr(0) + "ls\n" as a text frame
    assert wc.decode("\x00ls\n") == (0, b"ls\n")


@pytest.mark.parametrize("bad", [b"", ""])
def test_empty_message_is_an_error(bad: bytes | str) -> None:
    with pytest.raises(wc.ProtocolError):
        wc.decode(bad)


@pytest.mark.parametrize("payload,size", [
    pytest.param(b'{"Width":80,"Height":24}', (80, 24), id="plain"),
    pytest.param(b'{"Width":0,"Height":0}\n', (0, 0), id="first-zero-with-newline"),
])
def test_parse_resize(payload: bytes, size: tuple[int, int]) -> None:
    assert wc.parse_resize(payload) == size


@pytest.mark.parametrize("payload", [b"nope", b'{"Width":-1,"Height":2}', b"[1,2]"])
def test_parse_resize_rejects_garbage(payload: bytes) -> None:
    with pytest.raises(wc.ProtocolError):
        wc.parse_resize(payload)


def test_exit_code_status_is_what_kubectl_and_the_python_client_read() -> None:
    st = wc.exit_code_status(3, ["sh", "-c", "exit 3"])
    assert st["status"] == "Failure" and st["reason"] == "NonZeroExitCode"
    assert st["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}
    assert wc.exit_code_status(0) == {"metadata": {}, "status": "Success"}


def test_error_payload_by_protocol_version() -> None:
    v5, v1 = wc.protocol_for(wc.V5), wc.protocol_for(wc.V1)
    fail = wc.exit_code_status(2)
    assert json.loads(wc.error_payload(fail, v5) or b"") == fail
    assert json.loads(wc.error_payload(wc.success_status(), v5) or b"")["status"] == "Success"
    assert wc.error_payload(wc.success_status(), v1) is None
    assert wc.error_payload(fail, v1) == str(fail["message"]).encode()


def test_protocol_table() -> None:
    assert wc.protocol_for(wc.V5).close_channel and not wc.protocol_for(wc.V4).close_channel
    assert wc.protocol_for(wc.V4_BASE64).base64 and wc.protocol_for(wc.V4_BASE64).status_json
    assert wc.protocol_for(None).name == ""
    with pytest.raises(wc.ProtocolError):
        wc.protocol_for("v9.channel.k8s.io")


@pytest.mark.parametrize("values,ports", [
    pytest.param(["80,8080"], [80, 8080], id="comma-list"),
    pytest.param(["80", "443"], [80, 443], id="repeated"),
    pytest.param([" 5000 "], [5000], id="spaces"),
])
def test_parse_ports(values: list[str], ports: list[int]) -> None:
    assert wc.parse_ports(values) == ports


@pytest.mark.parametrize("values", [[], [""], ["x"], ["0"], ["70000"]])
def test_parse_ports_rejects(values: list[str]) -> None:
    with pytest.raises(wc.ProtocolError):
        wc.parse_ports(values)


def test_port_channels_and_prefix() -> None:
    assert wc.port_channels(0) == (0, 1) and wc.port_channels(2) == (4, 5)
    assert wc.port_prefix(8080) == bytes([0x90, 0x1F])   # little-endian, as the Python client reads it
