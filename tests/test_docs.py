"""Generated docs stay in sync with the code they describe."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_methods_doc_is_up_to_date():
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_method_docs.py"), "--check"])
    assert res.returncode == 0, "docs/methods.md is stale: run python tools/gen_method_docs.py"


def test_methods_doc_names_every_method_and_hyperparameter():
    from unforgotten.methods import METHODS

    text = (ROOT / "docs" / "methods.md").read_text()
    for name in METHODS.names():
        assert f"## `{name}`" in text
        for field in METHODS.get(name).hyperparameters():
            assert f"`{field}`" in text, (name, field)
