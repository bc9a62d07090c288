#!/usr/bin/env python3
"""Write the AdvBench sample shipped with the package (``src/unforgotten/starter/advbench_sample.*``).

The demo's table should show at least one harmful set that this project did not write. AdvBench
(Zou et al. 2023, llm-attacks/llm-attacks, data/advbench/harmful_behaviors.csv) is MIT-licensed,
so a derived sample may ship with its license notice: every 10th goal (52 of 520; the file is
grouped by topic, so a stride keeps the topics' mix), as prompt-only chat records. The alignment
data is checked to be disjoint from all 520 goals (tests/test_align_data.py, slow).

    python tools/make_advbench_sample.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "unforgotten" / "starter"
STRIDE = 10
SOURCE = "advbench/harmful_behaviors.csv"
ATTRIBUTION = (
    "advbench_sample.jsonl: every 10th goal of AdvBench harmful_behaviors.csv (Zou, Wang, Carlini, Nasr, Kolter,\n"
    "Fredrikson 2023, 'Universal and Transferable Adversarial Attacks on Aligned Language Models',\n"
    "https://github.com/llm-attacks/llm-attacks, data/advbench/), converted to chat records by\n"
    "tools/make_advbench_sample.py. Used under the MIT License below.\n\n"
)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    with open(args.data / SOURCE, newline="", encoding="utf-8") as f:
        goals = [row["goal"] for row in csv.DictReader(f)]
    rows = [{"messages": [{"role": "user", "content": g}], "id": f"advbench-{i:03d}"}
            for i, g in enumerate(goals) if i % STRIDE == 0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "advbench_sample.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                                    encoding="utf-8")
    license_text = (args.data / "advbench" / "LICENSE").read_text(encoding="utf-8")
    (args.out / "advbench_sample.LICENSE").write_text(ATTRIBUTION + license_text, encoding="utf-8")
    print(f"advbench_sample.jsonl: {len(rows)} of {len(goals)} goals")


if __name__ == "__main__":
    main()
