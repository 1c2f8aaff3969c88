"""Interop suite setup: skips everything, with one clear reason, when the Python packages
or the langtune binary are missing; builds the shared model folders once per session."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import interop_support as S  # noqa: E402

REASON = S.skip_reason()


def pytest_report_header(config):
    return f"langtune: {S.LANGTUNE_BIN}" + (f"\n{REASON}" if REASON else "")


def pytest_collection_modifyitems(config, items):
    if REASON:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=REASON))


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    if REASON:
        yield
        return
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    yield


@pytest.fixture(scope="session")
def tiny_llama3(tmp_path_factory):
    """The tiny random Llama-3 HF folder of Tests/Reference/tiny_llama3.py (Llama 3's real tokenizer)."""
    if not os.path.exists(S.llama3_tokenizer_json()):
        pytest.skip(f"{S.llama3_tokenizer_json()} is absent (scripts/fetch-models.sh)")
    sys.path.insert(0, os.path.join(S.REPO, "Tests", "Reference"))
    import tiny_llama3
    path = str(tmp_path_factory.mktemp("tiny") / "tiny_llama3")
    tiny_llama3.build_folder(path)
    return path


def _model_file(path):
    """`path`, or a skip naming it when scripts/fetch-models.sh has not fetched it."""
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent (scripts/fetch-models.sh)")
    return path


@pytest.fixture(scope="session")
def smollm2():
    return _model_file(S.smollm2_gguf())


@pytest.fixture(scope="session")
def gemma3():
    return _model_file(S.gemma3_gguf())
