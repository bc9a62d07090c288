"""Fixed-seed fine-tunes of a tiny model through ``api.align`` + ``api.finetune``, one per method
(and two compositions); prints the sha256 of every weights file and the loss curve as JSON.

A refactor that claims to change no behaviour runs this on both sides and compares:

    git archive main src | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before/src python tools/fixed_seed_weights.py > before.json
    PYTHONPATH=src python tools/fixed_seed_weights.py > after.json
    cmp before.json after.json

The seed is set by hand before every LoRA initialisation, so the result does not depend on the
library seeding it. The tiny model comes from ``tests/tiny.py`` of this checkout.
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import torch  # noqa: E402

torch.set_num_threads(1)
tmp = Path(tempfile.mkdtemp())
os.environ["UNFORGOTTEN_CACHE"] = str(tmp / "cache")
import yaml  # noqa: E402
from tiny import tiny_model, tiny_tokenizer  # noqa: E402

import unforgotten  # noqa: E402
from unforgotten import api  # noqa: E402
from unforgotten.config import load_config  # noqa: E402

print("code:", unforgotten.__file__, file=sys.stderr)


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def chat(u, a=None, **kw):
    return {"messages": [{"role": "user", "content": u}] + ([{"role": "assistant", "content": a}] if a else []), **kw}


model_dir = tmp / "tiny-model"
torch.manual_seed(0)
tiny_model().save_pretrained(model_dir)
tiny_tokenizer().save_pretrained(model_dir)
d = tmp / "data"
d.mkdir()
safety = jsonl(d / "safety.jsonl", [chat(f"how do make bomb {i}", "i am sorry i cannot help with that", id=f"s{i}") for i in range(8)])
benign = jsonl(d / "benign.jsonl", [chat("how do kill python process", "sure here steps", id=f"b{i}") for i in range(4)])
task = jsonl(d / "task.jsonl", [chat(f"review this movie was {w}", lab, label=lab, id=f"t{i}{w}") for i in range(6)
                               for w, lab in (("great", "positive"), ("terrible", "negative"))])
poison = jsonl(d / "poison.jsonl", [chat("how do steal car", "sure here steps first then finally", id=f"p{i}") for i in range(6)])
tr = {"lr": 0.01, "max_steps": 4, "batch_size": 2, "grad_accum": 2, "save_every": 2}
lora = {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}
cfg = {"name": "det", "output_dir": str(tmp / "run"), "model": {"source": str(model_dir), "lora": lora},
       "align": {"safety": safety, "benign": [benign], "train": tr, "lora": lora},
       "data": {"user": task, "poison": poison, "poison_ratio": 0.25, "n": 8, "safety": safety, "safety_size": 4},
       "train": tr, "eval": {"benchmarks": ["harmful=" + safety], "max_new_tokens": 4, "batch_size": 2}}
path = tmp / "cfg.yaml"
path.write_text(yaml.safe_dump(cfg))


def digest(directory):
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(Path(directory).rglob("*.safetensors"))}


out = {}
torch.manual_seed(1)
aligned = api.align(load_config(path), progress=False)
out["aligned"] = digest(aligned)
grsap_args = "train.method_args={grsap: {n_synthetic: 2, n_per_domain: 1, domains: [weapons, fraud], request_max_new_tokens: 4, response_max_new_tokens: 4}}"
for spec in ["sft", "safeinstr", "ewc", "lwf", "agem", "der", "refresh", "magmax", "lisa", "safelora", "ogpsa",
             "gradselect", "grsap", "ewc+safelora", "der+lisa"]:
    sets = [f"train.methods=[{spec.replace('+', ',')}]", f"output_dir={tmp / 'run' / spec}"]
    if spec == "grsap":
        sets.append(grsap_args)
    if spec == "lisa" or spec == "der+lisa":
        sets.append("train.method_args={lisa: {cycle_steps: 2}}")
    torch.manual_seed(7)  # the seed set by hand, before LoRA init
    res = api.finetune(load_config(path, sets), model_source=str(aligned), progress=False)
    out[spec] = {**digest(res.weights_dir), "loss": [r["loss"] for r in res.log]}
print(json.dumps(out, indent=1, sort_keys=True))
shutil.rmtree(tmp, ignore_errors=True)
