"""A bounded load test of the service on loopback: concurrent tenants, mixed requests, nothing lost.

N clients (one tenant each, the official openai client) send M requests each, mixed: upload a
file (20%), create a job (20%), list files or jobs (30%), retrieve one of their jobs (30%). No
worker runs, so jobs stay queued: this measures the API and the store, not training. At the end
every tenant lists everything (paginating) and the benchmark checks that each object a client
created is there, and that no tenant sees another's.

    python benchmarks/service_load.py [--clients 8] [--requests 50] [--database-url URL]

Prints p50/p99 latency per request kind and overall, errors, lost and cross-tenant objects; the
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = ap.parse_args()

    from service_kit import TASK_ROWS, client, make_service, running_api  # the tests' tiny model + config

    from unforgotten.service.auth import create_key
    from unforgotten.service.settings import load_service_config

    tmp = Path(tempfile.mkdtemp(prefix="uf-load-"))
    settings = load_service_config(make_service(tmp, database_url=args.database_url))
    body = "".join(json.dumps(r) + "\n" for r in TASK_ROWS).encode()
    lat: dict[str, list[float]] = {}
    errors: list[str] = []
    created: dict[str, dict[str, set]] = {}
    lock = threading.Lock()

    with running_api(settings) as (url, app):
        keys = {f"tenant{i}": create_key(app.state.store, f"tenant{i}")[1] for i in range(args.clients)}

        def run_client(tenant: str, seed: int) -> None:
            c = client(url, keys[tenant])
            rng = random.Random(seed)
            mine = {"files": set(), "jobs": set()}
            created[tenant] = mine
            for i in range(args.requests):
                roll = rng.random()
                kind = ("upload" if roll < 0.2 or not mine["files"] else "create" if roll < 0.4
                        else "list" if roll < 0.7 else "retrieve" if mine["jobs"] else "list")
                t0 = time.perf_counter()
                try:
                    if kind == "upload":
                        # unique content per upload: content addressing must not merge tenants' files
                        data = body + json.dumps({"messages": [{"role": "user", "content": f"{tenant} {i}"},
                                                               {"role": "assistant", "content": "ok"}]}).encode() + b"\n"
                        mine["files"].add(c.files.create(file=(f"{tenant}-{i}.jsonl", data), purpose="fine-tune").id)
                    elif kind == "create":
                        mine["jobs"].add(c.fine_tuning.jobs.create(training_file=rng.choice(sorted(mine["files"])),
                                                                   model="tiny-aligned").id)
                    elif kind == "list":
                        (c.files.list(limit=20) if rng.random() < 0.5 else c.fine_tuning.jobs.list(limit=20))
                    else:
                        c.fine_tuning.jobs.retrieve(rng.choice(sorted(mine["jobs"])))
                except Exception as e:  # noqa: BLE001 - counted, reported
                    with lock:
                        errors.append(f"{tenant} {kind}: {type(e).__name__}: {e}")
                with lock:
                    lat.setdefault(kind, []).append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=run_client, args=(t, i)) for i, t in enumerate(keys)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0

        lost = cross = 0
        all_ids = {t: m["files"] | m["jobs"] for t, m in created.items()}
        for tenant, mine in created.items():
            c = client(url, keys[tenant])
            files = {f.id for f in c.files.list(limit=100)}  # auto-paginates
            jobs = {j.id for j in c.fine_tuning.jobs.list(limit=100)}
            lost += len(mine["files"] - files) + len(mine["jobs"] - jobs)
            others = set().union(*(ids for t, ids in all_ids.items() if t != tenant))
            cross += len((files | jobs) & others)

    every = [x for xs in lat.values() for x in xs]
    result = {
        "clients": args.clients, "requests_per_client": args.requests, "store": "postgresql" if args.database_url else "sqlite",
        "wall_s": round(wall, 2), "requests": len(every), "req_per_s": round(len(every) / wall, 1),
        "p50_ms": round(1000 * statistics.median(every), 1), "p99_ms": round(1000 * pct(every, 0.99), 1),
        "by_kind": {k: {"n": len(v), "p50_ms": round(1000 * statistics.median(v), 1), "p99_ms": round(1000 * pct(v, 0.99), 1)}
                    for k, v in sorted(lat.items())},
        "errors": len(errors), "lost_objects": lost, "cross_tenant_objects": cross,
        "created": {"files": sum(len(m["files"]) for m in created.values()), "jobs": sum(len(m["jobs"]) for m in created.values())},
    }
    for k, v in result["by_kind"].items():
        print(f"{k:9s} n={v['n']:4d}  p50 {v['p50_ms']:7.1f} ms  p99 {v['p99_ms']:7.1f} ms")
    print(f"all       n={len(every):4d}  p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms; "
          f"{result['req_per_s']} req/s; errors {len(errors)}; lost {lost}; cross-tenant {cross}")
    for e in errors[:10]:
        print("  error:", e)
    print(json.dumps(result))
    if errors or lost or cross:
        sys.exit(1)


if __name__ == "__main__":
    main()
