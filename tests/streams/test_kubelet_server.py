"""KubeletServer over real TLS: authentication, logs, exec/attach and port-forward in every protocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest

from kybernetes.kubelet.runtime.base import ContainerState
from kybernetes.pki import ensure_pki, issue_client_cert
from kybernetes.streams import wschannel as wc
from kybernetes.streams.spdysession import SpdySession, SpdyStream
from kybernetes.streams.transport import WebSocketTunnel
from tests.harness import wait_for

from .conftest import BACKEND_TEXT, Node

pytestmark = pytest.mark.integration


def insecure_ctx(cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert is not None and key is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


@contextlib.asynccontextmanager
async def session(ctx: ssl.SSLContext) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx),
                                     timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


# ------------------------------------------------------------------------------ authentication


async def test_without_a_client_certificate_401_and_other_users_403(kubelet: Node, tmp_path: Path) -> None:
    async with session(insecure_ctx()) as s:
        async with s.get(kubelet.url("/healthz")) as r:
            assert r.status == 200 and await r.text() == "ok"
        for path in ("/stats/summary", "/containerLogs/default/web/web", "/exec/default/web/web?command=ls&stdout=1"):
            async with s.get(kubelet.url(path)) as r:
                assert r.status == 401
                doc = await r.json()
                assert doc["kind"] == "Status" and doc["reason"] == "Unauthorized"
    cert, key = await asyncio.to_thread(issue_client_cert, kubelet.pki, "bob", ["developers"])
    (tmp_path / "bob.crt").write_bytes(cert)
    (tmp_path / "bob.key").write_bytes(key)
    async with session(insecure_ctx(tmp_path / "bob.crt", tmp_path / "bob.key")) as s:
        async with s.get(kubelet.url("/stats/summary")) as r:
            assert r.status == 403
            assert (await r.json())["message"] == "Forbidden (user=bob, verb=get, resource=nodes, subresource=stats)"
        async with s.get(kubelet.url("/containerLogs/default/web/web")) as r:
            assert r.status == 403 and "subresource=log" in (await r.json())["message"]
    async with session(insecure_ctx(kubelet.pki.admin_cert, kubelet.pki.admin_key)) as s:   # system:masters
        async with s.get(kubelet.url("/stats/summary")) as r:
            assert r.status == 200 and (await r.json())["node"]["nodeName"] == "node-1"


async def test_a_certificate_from_another_ca_is_refused(kubelet: Node, tmp_path: Path) -> None:
    other = await asyncio.to_thread(ensure_pki, tmp_path / "other", hosts=[])
    async with session(insecure_ctx(other.apiserver_kubelet_client_cert, other.apiserver_kubelet_client_key)) as s:
        with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionResetError)):
            async with s.get(kubelet.url("/stats/summary")) as r:
                assert r.status == 401     # never reached: the handshake fails first
                raise aiohttp.ClientError("refused")


async def test_kubelet_client_get_json_and_errors(kubelet: Node) -> None:
    assert (await kubelet.client.get_json(kubelet.node, "/stats/summary"))["node"]["nodeName"] == "node-1"
    from kybernetes.api.errors import StatusError

    with pytest.raises(StatusError) as e:
        await kubelet.client.get_json(kubelet.node, "/containerLogs/default/nope/x")
    assert e.value.code == 404 and "not found" in e.value.message
    dead = {**kubelet.node, "status": {**kubelet.node["status"], "daemonEndpoints": {"kubeletEndpoint": {"Port": 1}}}}
    with pytest.raises(StatusError) as e:
        await kubelet.client.get_json(dead, "/healthz", timeout=5)
    assert e.value.code == 500 and "error dialing backend" in e.value.message


# ------------------------------------------------------------------------------ logs


async def test_container_logs(kubelet: Node) -> None:
    async with kubelet.client.stream_get(kubelet.node, "/containerLogs/default/web/web", {"tailLines": "2"}) as r:
        assert (await r.read()).decode().splitlines() == ["web/web line 1", "web/web line 2"]
    async with kubelet.client.stream_get(kubelet.node, "/containerLogs/default/multi/b", {"timestamps": "true", "limitBytes": "40"}) as r:
        assert await r.read() == b"2025-01-01T10:00:00.000000000Z multi/b l"
    from kybernetes.api.errors import StatusError

    with pytest.raises(StatusError) as e:
        async with kubelet.client.stream_get(kubelet.node, "/containerLogs/default/web/web", {"sinceSeconds": "0"}):
            pass
    assert e.value.code == 400 and "sinceSeconds" in e.value.message
    with pytest.raises(StatusError) as e:
        async with kubelet.client.stream_get(kubelet.node, "/containerLogs/default/web/web", {"previous": "true"}):
            pass
    assert e.value.code == 400 and "previous terminated container" in e.value.message


async def test_follow_ends_when_the_container_exits(kubelet: Node) -> None:
    c = kubelet.runtime.containers["web-web"]
    async with kubelet.client.stream_get(kubelet.node, "/containerLogs/default/web/web", {"follow": "true", "tailLines": "1"}) as r:
        assert await r.content.readline() == b"web/web line 2\n"
        with open(c.log_path, "a") as f:
            f.write("2025-01-01T10:00:09.000000000Z stdout F goodbye\n")
        assert await asyncio.wait_for(r.content.readline(), 5) == b"goodbye\n"
        c.state = ContainerState.EXITED
        assert await asyncio.wait_for(r.content.read(), 5) == b""


# ------------------------------------------------------------------------------ exec / attach


async def ws_exec(kubelet: Node, path: str, protocols: tuple[str, ...], stdin: bytes | None = None,
                  close_stdin: bool = True) -> tuple[dict[int, bytes], str | None]:
    out: dict[int, bytes] = {}
    ctx = kubelet.client.ssl_context
    assert ctx is not None
    async with session(ctx) as s, s.ws_connect(kubelet.url(path), protocols=protocols) as ws:
        proto = wc.protocol_for(ws.protocol)
        if stdin is not None:
            msg = wc.encode(wc.STDIN, stdin, b64=proto.base64)
            await (ws.send_str(msg) if isinstance(msg, str) else ws.send_bytes(msg))
            if close_stdin:
                await ws.send_bytes(bytes([wc.CLOSE, wc.STDIN]))
        async for m in ws:
            ch, payload = wc.decode(m.data, b64=proto.base64)
            out[ch] = out.get(ch, b"") + payload
        return out, ws.protocol


async def test_exec_over_websocket_v5_with_stdin_and_exit_code(kubelet: Node) -> None:
    out, proto = await ws_exec(kubelet, "/exec/default/web/web?command=sh&command=-c&command=cat;echo err>%262;exit%203"
                               "&stdin=true&stdout=true&stderr=true", (wc.V5,), stdin=b"hello\n")
    assert proto == wc.V5
    assert out[wc.STDOUT] == b"hello\n" and out[wc.STDERR] == b"err\n"
    st = json.loads(out[wc.ERROR])
    assert st["reason"] == "NonZeroExitCode" and st["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert kubelet.server.statistics()["exec/websocket/v5.channel.k8s.io"] == 1


async def test_exec_over_websocket_v4_base64(kubelet: Node) -> None:
    out, proto = await ws_exec(kubelet, "/exec/default/web/web?command=printf&command=%5Cx00%5Cxff&stdout=1",
                               (wc.V4_BASE64,))
    assert proto == wc.V4_BASE64
    assert out[wc.STDOUT] == b"\x00\xff" and json.loads(out[wc.ERROR])["status"] == "Success"


async def test_exec_errors_before_the_upgrade(kubelet: Node) -> None:
    ctx = kubelet.client.ssl_context
    assert ctx is not None
    async with session(ctx) as s:
        async with s.get(kubelet.url("/exec/default/web/web?command=ls&stdout=1")) as r:
            assert r.status == 400 and (await r.json())["message"] == "Upgrade request required"
        async with s.get(kubelet.url("/exec/default/web/web?stdout=1")) as r:
            assert r.status == 400 and "at least one command" in (await r.json())["message"]
        async with s.get(kubelet.url("/exec/default/web/web?command=ls")) as r:
            assert r.status == 400 and "at least 1 of stdin, stdout, stderr" in (await r.json())["message"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            async with s.ws_connect(kubelet.url("/exec/default/ghost/x?command=ls&stdout=1"), protocols=(wc.V5,)):
                pass
        assert e.value.status == 404


async def test_a_command_that_cannot_start_fails_on_the_error_channel(kubelet: Node) -> None:
    out, _ = await ws_exec(kubelet, "/exec/default/web/web?command=/no/such/binary&stdout=1", (wc.V5,))
    st = json.loads(out[wc.ERROR])
    assert st["status"] == "Failure" and "No such file" in st["message"]


async def test_client_going_away_kills_the_exec_process(kubelet: Node) -> None:
    ctx = kubelet.client.ssl_context
    assert ctx is not None
    async with session(ctx) as s, s.ws_connect(kubelet.url("/exec/default/web/web?command=sleep&command=60&stdout=1"),
                                               protocols=(wc.V5,)):
        await wait_for(lambda: len(kubelet.runtime.execs) == 1, timeout=5, what="exec started")
    proc = kubelet.runtime.execs[0].proc
    await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode is not None and proc.returncode < 0    # killed by a signal


async def test_tty_exec_gets_resizes_and_one_output_stream(kubelet: Node) -> None:
    ctx = kubelet.client.ssl_context
    assert ctx is not None
    out = b""
    async with session(ctx) as s, s.ws_connect(
            kubelet.url("/exec/default/web/web?command=sh&command=-c&command=read%20x;echo%20$x;echo%20e%3E%262"
                        "&stdin=1&stdout=1&stderr=1&tty=1"), protocols=(wc.V5,)) as ws:
        await ws.send_bytes(wc.encode(wc.RESIZE, b'{"Width":100,"Height":40}\n'))  # type: ignore[arg-type]
        await ws.send_bytes(wc.encode(wc.STDIN, b"typed\n"))  # type: ignore[arg-type]
        async for m in ws:
            ch, payload = wc.decode(m.data)
            assert ch != wc.STDERR          # a terminal has one output stream
            if ch == wc.STDOUT:
                out += payload
    assert out == b"typed\ne\n"
    assert kubelet.runtime.execs[0].resizes == [(100, 40)]


async def test_attach_over_websocket(kubelet: Node) -> None:
    out, _ = await ws_exec(kubelet, "/attach/default/web/web?stdin=1&stdout=1&stderr=1", (wc.V5,), stdin=b"ping\n")
    assert out[wc.STDOUT] == b"attached\ngot:ping\n"
    assert json.loads(out[wc.ERROR])["status"] == "Success"


async def spdy_client(kubelet: Node, method: str, path: str, protocol: str) -> tuple[SpdySession, asyncio.Task[None], Any]:
    path, _, qs = path.partition("?")
    up = await kubelet.client.open_upgrade(kubelet.node, method, path, parse_qsl(qs) or None,
                                           [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                                            ("X-Stream-Protocol-Version", protocol)])
    assert up.status == 101, up.body
    assert up.header("X-Stream-Protocol-Version") == protocol and up.conn is not None
    sess = SpdySession(up.conn, client=True)
    return sess, asyncio.ensure_future(sess.run()), up


async def read_all(st: SpdyStream) -> bytes:
    out = b""
    while chunk := await asyncio.wait_for(st.read(), 10):
        out += chunk
    return out


async def test_exec_over_spdy(kubelet: Node) -> None:
    sess, runner, _ = await spdy_client(
        kubelet, "POST", "/exec/default/web/web?command=sh&command=-c&command=cat;echo%20oops%20>%262;exit%205"
                         "&stdin=true&stdout=true&stderr=true", "v4.channel.k8s.io")
    try:
        error = await sess.open_stream({"streamtype": "error"})
        stdin = await sess.open_stream({"streamtype": "stdin"})
        stdout = await sess.open_stream({"streamtype": "stdout"})
        stderr = await sess.open_stream({"streamtype": "stderr"})
        await stdin.write(b"via spdy\n")
        await stdin.close()
        assert await read_all(stdout) == b"via spdy\n"
        assert await read_all(stderr) == b"oops\n"
        st = json.loads(await read_all(error))
        assert st["details"]["causes"][0]["message"] == "5"
    finally:
        await sess.close()
        runner.cancel()
    assert kubelet.server.statistics()["exec/spdy/v4.channel.k8s.io"] == 1


async def test_spdy_protocol_negotiation_failure_is_403(kubelet: Node) -> None:
    up = await kubelet.client.open_upgrade(kubelet.node, "POST", "/exec/default/web/web", [("command", "ls"), ("stdout", "1")],
                                           [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                                            ("X-Stream-Protocol-Version", "v1.channel.k8s.io")])
    assert up.status == 403 and b"unable to negotiate protocol" in up.body


# ------------------------------------------------------------------------------ port-forward


async def forward_over_spdy(sess: SpdySession, port: int, request_id: str, request: bytes, *,
                            close_first: bool = False) -> tuple[bytes, bytes]:
    """One forwarded connection as kubectl makes it: error stream, data stream, request, answer."""
    error = await sess.open_stream({"streamtype": "error", "port": str(port), "requestid": request_id})
    await error.close()     # kubectl never writes on the error stream
    data = await sess.open_stream({"streamtype": "data", "port": str(port), "requestid": request_id})
    await data.write(request)
    if close_first:         # the local client closed before the answer came
        await data.close()
    body = await read_all(data)
    await data.close()
    return body, await read_all(error)


async def test_portforward_over_plain_spdy(kubelet: Node) -> None:
    sess, runner, _ = await spdy_client(kubelet, "POST", "/portForward/default/web", "portforward.k8s.io")
    try:
        body, err = await forward_over_spdy(sess, kubelet.backend_port, "0", b"GET / HTTP/1.0\r\n\r\n")
        assert body.endswith(BACKEND_TEXT.encode()) and body.startswith(b"HTTP/1.") and err == b""
        body, err = await forward_over_spdy(sess, kubelet.backend_port, "1", b"GET /echo?x=again HTTP/1.0\r\n\r\n",
                                            close_first=True)
        assert body.endswith(b"again") and err == b""
        # a port nobody listens on: the error stream says so
        body, err = await forward_over_spdy(sess, 1, "2", b"")
        assert body == b"" and b"error forwarding port 1 to pod default/web" in err
    finally:
        await sess.close()
        runner.cancel()
    assert kubelet.runtime.forwarded == [kubelet.backend_port, kubelet.backend_port, 1]


async def test_portforward_spdy_tunnelled_in_websocket(kubelet: Node) -> None:
    ctx = kubelet.client.ssl_context
    assert ctx is not None
    async with session(ctx) as s, s.ws_connect(kubelet.url("/portForward/default/web"),
                                               protocols=(wc.SPDY_TUNNEL_PORTFORWARD,)) as ws:
        assert ws.protocol == wc.SPDY_TUNNEL_PORTFORWARD
        sess = SpdySession(WebSocketTunnel(ws), client=True)
        runner = asyncio.ensure_future(sess.run())
        try:
            body, err = await forward_over_spdy(sess, kubelet.backend_port, "0", b"GET / HTTP/1.0\r\n\r\n")
            assert body.endswith(BACKEND_TEXT.encode()) and err == b""
        finally:
            runner.cancel()
    assert kubelet.server.statistics()["portforward/websocket/SPDY/3.1+portforward.k8s.io"] == 1


async def test_portforward_websocket_channels(kubelet: Node) -> None:
    ctx = kubelet.client.ssl_context
    assert ctx is not None
    port = kubelet.backend_port
    got: dict[int, list[bytes]] = {}
    async with session(ctx) as s, s.ws_connect(kubelet.url(f"/portForward/default/web?ports={port},1"),
                                               protocols=(wc.V5, wc.V4)) as ws:
        assert ws.protocol == wc.V4     # port-forward has no v5: the Python client gets v4
        await ws.send_bytes(wc.encode(0, b"GET / HTTP/1.0\r\n\r\n"))  # type: ignore[arg-type]
        async for m in ws:
            ch, payload = wc.decode(m.data)
            got.setdefault(ch, []).append(payload)
    assert got[0][0] == wc.port_prefix(port) and got[1][0] == wc.port_prefix(port)
    assert got[2] == [wc.port_prefix(1)] and got[3][0] == wc.port_prefix(1)
    assert b"".join(got[0][1:]).endswith(BACKEND_TEXT.encode())
    assert b"error forwarding port 1" in b"".join(got[3][1:])


async def test_portforward_websocket_needs_ports(kubelet: Node) -> None:
    ctx = kubelet.client.ssl_context
    assert ctx is not None
    async with session(ctx) as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            async with s.ws_connect(kubelet.url("/portForward/default/web"), protocols=(wc.V4,)):
                pass
        assert e.value.status == 400
