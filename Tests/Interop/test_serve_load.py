"""`langtune serve` under load: 32 clients send 200 requests over the base and three adapters with
different prompt and answer lengths. None fails, each greedy answer equals the same request's answer
served alone, and the server's memory comes back near where it started."""
import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

import serve_support as SS

QUESTIONS = ["What is the capital of France?", "Say hello in Turkish.", "Count from one to five.",
             "Name a fruit that is yellow.", "What is two plus two? Explain your answer step by step, please."]


# float32, and bf16 (int8 products, prompts in chunks with the prompt-prefix cache: every request here
# shares the chat template's system turn, so most take a cached prefix).
@pytest.fixture(scope="module", params=["f32", "bf16"])
def server(smollm2, tmp_path_factory, request):
    root = tmp_path_factory.mktemp("load_adapters")
    args = ["--model", smollm2, "--max-concurrent", 16, "--max-queue", 64, "--dtype", request.param]
    for i in range(3):
        args += ["--adapter", f"a{i}={SS.make_adapter(smollm2, str(root / f'a{i}'), 20 + i)}"]
    s = SS.Server(*args)
    yield s
    assert s.stop() == 0


def _ask(server, model, question, max_tokens):
    st, body, _ = server.post("/v1/chat/completions", {"model": model, "max_tokens": max_tokens, "temperature": 0,
                                                       "messages": [{"role": "user", "content": question}]})
    return st, (json.loads(body) if st == 200 else body.decode())


def test_32_clients_200_requests_answer_as_alone(server):
    rng = random.Random(0)
    # Short and long answers: each question with its own length, on every model.
    kinds = [(m, q, 3 if i % 2 else 12) for m in ["base", "a0", "a1", "a2"] for i, q in enumerate(QUESTIONS)]
    alone = {}
    # Warm-up, then the memory the load is measured against.
    _ask(server, "base", QUESTIONS[0], 4)
    for k in kinds:
        st, r = _ask(server, *k)
        assert st == 200, r
        alone[k] = r["choices"][0]["message"]["content"]
    assert len(set(alone.values())) > len(QUESTIONS) + 2, "adapters should change the answers"
    rss_start = server.rss_bytes()

    requests = [rng.choice(kinds) for _ in range(200)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda k: _ask(server, *k), requests))
    errors = [(k, st, r) for k, (st, r) in zip(requests, results) if st != 200]
    assert not errors, errors[:3]
    mismatched = [(k, r["choices"][0]["message"]["content"], alone[k]) for k, (_, r) in zip(requests, results)
                  if r["choices"][0]["message"]["content"] != alone[k]]
    assert not mismatched, mismatched[:3]
    assert server.health()["running"] == 0
    rss_end = server.rss_bytes()
    # KV caches of up to 16 rows live during the load; afterwards they are freed.
    assert rss_end - rss_start < 48 * 2**20, f"RSS grew {(rss_end - rss_start) / 2**20:.1f} MiB"
