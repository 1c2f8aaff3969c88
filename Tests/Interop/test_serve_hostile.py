"""`langtune serve` against malformed, oversized and hostile requests: each gets a 4xx (with OpenAI's
error JSON where the request got far enough for one), and the server stays up and answers the next
good request."""
import json
import select
import socket
import time

import pytest

import serve_support as SS

KEY = "hostile-key"
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def server(smollm2):
    s = SS.Server("--model", smollm2, "--header-timeout", 2, "--max-body-bytes", 65536, "--ctx", 512, api_key=KEY)
    yield s
    assert s.stop() == 0


def good(**kw):
    body = {"model": "base", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]}
    body.update(kw)
    return body


def bodies():
    """(name, raw body bytes) that must each be refused with a 4xx."""
    out = []
    raw = [b"", b"{", b"}", b"[]", b"null", b"1", b'"text"', b"{'model': 'base'}", b'{"model": "base",}', b"{\"model\"",
           b'{"model": "base", "messages": [', b"\x00\x01\x02", b"true", b'{"model": 1, "messages": []}', b"NaN",
           b'{"model": "base", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": NaN}']
    out += [(f"raw{i}", r) for i, r in enumerate(raw)]
    # Invalid UTF-8 in and around strings.
    for i, bad in enumerate([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xf0\x28\x8c\xbc", b"\xed\xa0\x80", b"\xc0\xaf", b"\xfe\xfe\xff"]):
        out.append((f"utf8-content{i}", b'{"model":"base","max_tokens":2,"messages":[{"role":"user","content":"a' + bad + b'"}]}'))
        out.append((f"utf8-key{i}", b'{"mo' + bad + b'del":"base","messages":[]}'))
    # Fields out of range or of the wrong type.
    wrong = [dict(max_tokens=-1), dict(max_tokens=0), dict(max_tokens="ten"), dict(max_tokens=10**9), dict(max_tokens=2**70),
             dict(max_tokens=1.5), dict(max_tokens=None, max_completion_tokens=-5), dict(temperature=-1), dict(temperature=2.5),
             dict(temperature="hot"), dict(top_p=0), dict(top_p=1.5), dict(top_p=-0.1), dict(n=2), dict(n=0), dict(n=-1),
             dict(seed="x"), dict(seed=2**80), dict(stop=["a", "b", "c", "d", "e"]), dict(stop=5), dict(messages=[]),
             dict(messages="Hi"), dict(messages=[{"role": "wizard", "content": "Hi"}]), dict(messages=[{"role": "user"}]),
             dict(messages=[{"role": "user", "content": 5}]), dict(messages=[{"content": "Hi"}]),
             dict(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
             dict(model=None), dict(model=["base"]), dict(model="no-such-model"), dict(stream="yes"), dict(temperature=None, top_p="x"),
             dict(max_tokens=True), dict(top_p=True), dict(stream_options="x"), dict(stop=[1, 2]),
             dict(messages=[{"role": "user", "content": "Hi"}, 5]), dict(model="../../etc/passwd"),
             dict(grounded_context=5), dict(grounded_context=""), dict(grounded_context=" \n"), dict(grounded_context=["a"]),
             dict(grounded_context="x" * 200_000)]
    for i, w in enumerate(wrong):
        b = good()
        b.update(w)
        b = {k: v for k, v in b.items() if v is not None}
        out.append((f"field{i}:{json.dumps(w)[:40]}", json.dumps(b).encode()))
    # Deeply nested JSON, in an unknown field and in place of a known one.
    for depth in (1000, 10000, 100000):
        out.append((f"nested-list{depth}", b'{"model":"base","x":' + b"[" * depth + b"]" * depth + b',"messages":[]}'))
        out.append((f"nested-obj{depth}", b'{"model":"base","messages":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"))
        out.append((f"nested-open{depth}", b"[" * depth))
    # A prompt over the token limit (but under the body limit).
    out.append(("long-prompt", json.dumps(good(messages=[{"role": "user", "content": "word " * 8000}])).encode()))
    out.append(("huge-max-tokens", json.dumps(good(max_tokens=100000)).encode()))
    return out


def expect_4xx(server, status, body, what):
    assert 400 <= status < 500, f"{what}: status {status}, body {body[:200]!r}"
    if body:
        err = json.loads(body)["error"]
        assert err["message"] and err["type"], what
    assert server.alive(), f"{what}: the server died"


def raw_exchange(server, data, read_timeout=10, pace=None):
    """Sends raw bytes (with `pace` seconds between them when set) and returns the status line's code."""
    s = socket.create_connection((server.host, server.port), timeout=read_timeout)
    try:
        try:
            if pace:
                for b in data:
                    if select.select([s], [], [], 0)[0]:
                        break  # the server answered before the request was complete
                    s.sendall(bytes([b]))
                    time.sleep(pace)
            else:
                s.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server refused part-way; its answer may still be readable
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return int(got.split(b" ")[1]) if got.startswith(b"HTTP/1.1 ") else None
    except (ConnectionResetError, BrokenPipeError):
        return None
    finally:
        s.close()


def test_hostile_requests_get_4xx_and_server_survives(server):
    count = 0
    for name, body in bodies():
        st, resp, _ = server.post(CHAT, body)
        expect_4xx(server, st, resp, name)
        count += 1
    # The same on completions and the admin endpoints.
    for path, body in [("/v1/completions", {"model": "base", "prompt": ["a", "b"]}), ("/v1/completions", {"model": "base"}),
                       ("/v1/completions", {"model": "base", "prompt": "x", "max_tokens": -3}),
                       ("/v1/completions", {"model": "base", "prompt": ""}),
                       ("/v1/load_lora_adapter", {"lora_name": "x"}), ("/v1/load_lora_adapter", {"lora_name": "x", "lora_path": "/etc"}),
                       ("/v1/load_lora_adapter", {"lora_name": "base", "lora_path": "/tmp"}),
                       ("/v1/unload_lora_adapter", {"lora_name": "never-loaded"}), ("/v1/unload_lora_adapter", b"{")]:
        st, resp, _ = server.post(path, body)
        expect_4xx(server, st, resp, f"{path} {body!r}")
        count += 1
    # Wrong method, unknown path, no key, wrong key.
    for method, path, key in [("GET", CHAT, "default"), ("DELETE", "/v1/models", "default"), ("GET", "/v2/nothing", "default"),
                              ("GET", "/../../etc/passwd", "default"), ("POST", CHAT, None), ("POST", CHAT, "wrong"),
                              ("GET", "/v1/models", "Bearer"), ("GET", "/metrics", "")]:
        st, resp, _ = server.request(method, path, json.dumps(good()).encode() if method == "POST" else None, key=key)
        expect_4xx(server, st, resp, f"{method} {path} key={key}")
        count += 1
    # Oversized bodies: declared, and sent chunked without a length.
    big = json.dumps(good(messages=[{"role": "user", "content": "x" * 200000}])).encode()
    st, resp, _ = server.post(CHAT, big)
    assert st == 413, st
    count += 1
    auth = f"Authorization: Bearer {KEY}\r\n".encode()
    chunked = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\n"
    chunked += b"".join(b"%x\r\n" % 10000 + b"x" * 10000 + b"\r\n" for _ in range(10)) + b"0\r\n\r\n"
    assert raw_exchange(server, chunked) == 413
    count += 1
    # Broken HTTP: garbage, an enormous header, a lying Content-Length.
    for data in [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n",
                 b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                 b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"]:
        code = raw_exchange(server, data)
        assert code is not None and 400 <= code < 500, (data[:60], code)
        assert server.alive()
        count += 1
    assert count >= 100, count
    st, resp, _ = server.post(CHAT, good())
    assert st == 200 and json.loads(resp)["choices"][0]["message"]["content"] is not None


def test_slow_loris_gets_408(server):
    started = time.time()
    # Headers trickled a byte at a time, never finished within the 2 s head deadline.
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    assert raw_exchange(server, head, pace=0.05) == 408
    # A body that never arrives in full.
    body = json.dumps(good()).encode()
    partial = (f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body) + 50}\r\n\r\n").encode() + body
    assert raw_exchange(server, partial) == 408
    assert time.time() - started < 30
    st, resp, _ = server.post(CHAT, good())
    assert st == 200, resp
