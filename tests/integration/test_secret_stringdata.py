"""A Secret's stringData is write-only: folded into data (base64) on create and update."""

from __future__ import annotations

import base64


async def test_string_data_folded_into_data(api) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": base64.b64encode(b"1").decode()}, "stringData": {"b": "two", "a": "one"}}
    code, created, _ = await api.post("/api/v1/namespaces/default/secrets", body)
    assert code == 201, created
    assert "stringData" not in created
    assert created["data"] == {"a": base64.b64encode(b"one").decode(), "b": base64.b64encode(b"two").decode()}
    created["stringData"] = {"c": "three"}
    code, out, _ = await api.put("/api/v1/namespaces/default/secrets/s", created)
    assert code == 200, out
    code, got, _ = await api.get("/api/v1/namespaces/default/secrets/s")
    assert "stringData" not in got and base64.b64decode(got["data"]["c"]) == b"three"
