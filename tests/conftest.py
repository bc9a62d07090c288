import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from tiny import tiny_model, tiny_tokenizer  # noqa: E402

# Tiny models gain nothing from intra-op threads; on a busy 2-core machine they cost ~15x.
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def tok():
    return tiny_tokenizer()


@pytest.fixture
def model():
    return tiny_model()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    # Never touch the user's real cache from tests.
    monkeypatch.setenv("UNFORGOTTEN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """The pre-alignment tiny base model saved as a local HF directory (methods' base_source)."""
    d = tmp_path_factory.mktemp("base")
    tiny_model(seed=1).save_pretrained(d)
    tiny_tokenizer().save_pretrained(d)
    return d
