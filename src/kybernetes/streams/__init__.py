"""Streaming protocols of exec, attach and port-forward, as kubectl and the Python client speak them.

    wschannel.py      WebSocket channel framing (v5/v4/base64/v1), Status documents (pure)
    spdy.py           SPDY/3.1 frames and zlib header blocks with the SPDY/3 dictionary (pure)
    spdysession.py    a SPDY session: streams, replies, pings, flow control
    transport.py      byte transports: hijacked HTTP connection after a 101, asyncio streams,
                      SPDY tunnelled in WebSocket messages; ``pipe`` between two of them
    remotecommand.py  exec/attach sessions over WebSocket or SPDY around a runtime ExecProcess
    portforward.py    port-forward sessions over SPDY (kubectl) or WebSocket channels (Python)

The kubelet terminates these protocols (``kubelet/server.py``); the API server only relays the
upgraded connection to the kubelet byte for byte (``apiserver/nodeproxy.py``). Nothing is
imported here.
"""
