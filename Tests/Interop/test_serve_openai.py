"""`langtune serve` against the official `openai` client: chat (plain and streamed), completions, the
models list, adapters chosen by `model` (greedy answers equal `langtune generate --adapter`), adapters
loaded and unloaded at run time, the API key, and the server's limits, cancellation and draining."""
import json
import os
import socket
import threading
import time

import pytest

import serve_support as SS

KEY = "test-key-123"
PROMPTS = ["What is the capital of France?", "Say hello in Turkish.", "Count from one to five."]


@pytest.fixture(scope="module")
def adapters(smollm2, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_adapters")
    return {name: SS.make_adapter(smollm2, str(root / name), seed) for name, seed in [("a1", 1), ("a2", 2)]}


@pytest.fixture(scope="module")
def server(smollm2, adapters):
    s = SS.Server("--model", smollm2, "--adapter", f"a1={adapters['a1']}", "--served-model-name", "smol", api_key=KEY)
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def client(server):
    import openai
    return openai.OpenAI(base_url=server.base + "/v1", api_key=KEY, max_retries=0, timeout=120)


def test_models_lists_base_and_adapters(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == ["smol", "a1"]


def test_chat_matches_generate(client, smollm2):
    ref = SS.generate(smollm2, PROMPTS[0], 16)
    r = client.chat.completions.create(model="smol", messages=[{"role": "user", "content": PROMPTS[0]}],
                                       max_tokens=16, temperature=0)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == ref["text"]
    assert r.usage.prompt_tokens == len(ref["prompt_ids"])
    assert r.usage.completion_tokens == len(ref["ids"])
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.choices[0].finish_reason == ("length" if ref["finish_reason"] == "length" else "stop")


def test_chat_stream_equals_plain_answer(client):
    msgs = [{"role": "user", "content": PROMPTS[1]}]
    plain = client.chat.completions.create(model="smol", messages=msgs, max_tokens=20, temperature=0)
    stream = client.chat.completions.create(model="smol", messages=msgs, max_tokens=20, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    assert len(pieces) > 1, "a stream delivers text as it is generated"
    assert "".join(pieces) == plain.choices[0].message.content
    assert finish == plain.choices[0].finish_reason
    assert usage.completion_tokens == plain.usage.completion_tokens


def test_stream_ends_with_done(server):
    import http.client
    c = http.client.HTTPConnection(server.host, server.port, timeout=60)
    c.request("POST", "/v1/chat/completions", json.dumps({"model": "smol", "stream": True, "max_tokens": 5, "temperature": 0,
                                                           "messages": [{"role": "user", "content": "Hi"}]}),
              server.headers())
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
    events = [e for e in r.read().decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)


def test_completions_match_generate(client, smollm2):
    prompt = "The three primary colours are"
    ref = SS.generate(smollm2, prompt, 12, chat=False)
    r = client.completions.create(model="smol", prompt=prompt, max_tokens=12, temperature=0)
    assert r.object == "text_completion"
    assert r.choices[0].text == ref["text"]
    assert r.usage.prompt_tokens == len(ref["prompt_ids"])
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="smol", prompt=prompt, max_tokens=12, temperature=0, stream=True) if c.choices)
    assert streamed == ref["text"]


def test_adapter_chosen_by_model_matches_generate(client, smollm2, adapters):
    differs = False
    for p in PROMPTS[:2]:
        ref = SS.generate(smollm2, p, 12, adapter=adapters["a1"])
        got = client.chat.completions.create(model="a1", messages=[{"role": "user", "content": p}], max_tokens=12, temperature=0)
        assert got.choices[0].message.content == ref["text"]
        base = client.chat.completions.create(model="smol", messages=[{"role": "user", "content": p}], max_tokens=12, temperature=0)
        differs |= base.choices[0].message.content != ref["text"]
    assert differs, "the adapter should change at least one answer"


def test_load_and_unload_adapter_at_run_time(client, server, smollm2, adapters):
    import openai
    msgs = [{"role": "user", "content": PROMPTS[2]}]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="a2", messages=msgs, max_tokens=4)
    st, body, _ = server.post("/v1/load_lora_adapter", {"lora_name": "a2", "lora_path": adapters["a2"]})
    assert st == 200, body
    assert [m.id for m in client.models.list().data] == ["smol", "a1", "a2"]
    ref = SS.generate(smollm2, PROMPTS[2], 10, adapter=adapters["a2"])
    got = client.chat.completions.create(model="a2", messages=msgs, max_tokens=10, temperature=0)
    assert got.choices[0].message.content == ref["text"]
    # Loading a second time under the same name, or a folder that is not an adapter, is refused.
    assert server.post("/v1/load_lora_adapter", {"lora_name": "a2", "lora_path": adapters["a2"]})[0] == 400
    assert server.post("/v1/load_lora_adapter", {"lora_name": "bad", "lora_path": "/nonexistent"})[0] == 400
    # Admin endpoints are behind the key too.
    assert server.post("/v1/unload_lora_adapter", {"lora_name": "a2"}, key="wrong")[0] == 401
    assert server.post("/v1/unload_lora_adapter", {"lora_name": "a2"})[0] == 200
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="a2", messages=msgs, max_tokens=4)
    assert e.value.body["code"] == "model_not_found"
    assert server.post("/v1/unload_lora_adapter", {"lora_name": "a2"})[0] == 404


def test_wrong_or_missing_key_is_refused(server):
    import openai
    bad = openai.OpenAI(base_url=server.base + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.models.list()
    assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="smol", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert server.get("/v1/models", key=None)[0] == 401
    assert server.get("/metrics", key=None)[0] == 401
    assert server.get("/health", key=None)[0] == 200


def test_stop_strings_and_sampling(client):
    msgs = [{"role": "user", "content": PROMPTS[2]}]
    full = client.chat.completions.create(model="smol", messages=msgs, max_tokens=24, temperature=0).choices[0].message.content
    assert "," in full or " " in full
    stop = "," if "," in full else " "
    r = client.chat.completions.create(model="smol", messages=msgs, max_tokens=24, temperature=0, stop=[stop])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == full[:full.index(stop)]
    # Sampling with a seed repeats itself; top_p and temperature are taken.
    kw = dict(model="smol", messages=msgs, max_tokens=12, temperature=1.2, top_p=0.9, seed=7)
    a = client.chat.completions.create(**kw).choices[0].message.content
    b = client.chat.completions.create(**kw).choices[0].message.content
    assert a == b


def test_metrics_are_exported(server, client):
    client.chat.completions.create(model="smol", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    st, body, headers = server.get("/metrics")
    text = body.decode()
    assert st == 200
    for name in ["langtune_requests_total", "langtune_generated_tokens_total", "langtune_request_duration_seconds_bucket",
                 "langtune_time_to_first_token_seconds_bucket", "langtune_queue_depth", "langtune_running_requests"]:
        assert name in text, name


def _long_chat(max_tokens=200):
    return {"model": "base", "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "Write a long story about a dragon and a knight."}]}


def test_disconnect_frees_its_row(server):
    s = socket.create_connection((server.host, server.port))
    body = json.dumps(_long_chat()).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    s.sendall(head + body)
    assert b"200 OK" in s.recv(4096)
    deadline = time.time() + 30
    while server.health()["running"] == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert server.health()["running"] == 1
    s.close()
    deadline = time.time() + 30
    while server.health()["running"] > 0 and time.time() < deadline:
        time.sleep(0.05)
    assert server.health()["running"] == 0, "a client that left must stop its generation"


def test_full_queue_answers_429_and_sigterm_drains(smollm2):
    s = SS.Server("--model", smollm2, "--max-concurrent", 1, "--max-queue", 0)
    try:
        import http.client
        results = {}

        def long_request():
            c = http.client.HTTPConnection(s.host, s.port, timeout=120)
            c.request("POST", "/v1/chat/completions", json.dumps(_long_chat(60)), s.headers())
            r = c.getresponse()
            results["status"] = r.status
            results["body"] = r.read().decode()

        t = threading.Thread(target=long_request)
        t.start()
        deadline = time.time() + 30
        while s.health()["running"] == 0 and time.time() < deadline:
            time.sleep(0.02)
        st, body, headers = s.post("/v1/chat/completions", {"model": "base", "max_tokens": 2,
                                                            "messages": [{"role": "user", "content": "Hi"}]})
        assert st == 429
        assert int(headers["Retry-After"]) >= 1
        assert json.loads(body)["error"]["type"] == "rate_limit_error"
        # SIGTERM while the long request runs: it finishes in full, then the server exits cleanly.
        assert s.stop() == 0
        t.join(timeout=60)
        assert results["status"] == 200
        assert results["body"].rstrip().endswith("data: [DONE]")
    finally:
        s.stop()


def test_grounded_context_keeps_the_answer_to_a_span(client):
    """`grounded_context` (our extension, sent with the client's `extra_body`): the answer is a span of
    the passage, streamed or not; a blank passage is refused with OpenAI's error JSON."""
    import openai
    passage = "Ankara, 13 Ekim 1923'ten beri Türkiye'nin başkentidir. Şehir İç Anadolu Bölgesi'nde yer alır."
    msgs = [{"role": "user", "content": passage + "\n\nTürkiye'nin başkenti neresidir?"}]
    r = client.chat.completions.create(model="smol", messages=msgs, max_tokens=16, temperature=0,
                                       extra_body={"grounded_context": passage})
    answer = r.choices[0].message.content.strip()
    assert answer and answer in passage, answer
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="smol", messages=msgs, max_tokens=16, temperature=0, stream=True,
        extra_body={"grounded_context": passage}) if c.choices)
    assert streamed == r.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="smol", messages=msgs, max_tokens=4, extra_body={"grounded_context": "  "})
    assert e.value.body["param"] == "grounded_context"
