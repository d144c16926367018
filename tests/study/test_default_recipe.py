"""The shipped quickstart's decisions (auto precision, auto engine, its training and evaluation settings) run
end to end.

Other tests pin float32, the hf engine and small settings; this one keeps the recipe's own training and
evaluation sections, `dtype: auto` (bf16 on bf16-capable CPUs, float32 on AVX2 ones) and `backend: auto`
(vLLM's CPU build where it runs: one engine for the student's baseline, its self-distillation teacher and
every trained checkpoint), and swaps only the models (tiny ones vLLM's CPU kernels take) and the data size, so the
default path is exercised in the fast suite.
"""

import json
from importlib.resources import files

import yaml

from capgap.models import decide
from capgap.models.engines import Engine
from capgap.store import Store
from tests.study.test_grid import capgap


def _auto_engine():
    """What `auto` decides in a fresh process without the suite's CAPGAP_ENGINE pin."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CAPGAP_ENGINE"}
    code = "from capgap.models.engines import decide_engine as d; e = d(); print(e.name); print(e.reason)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    name, reason = out.stdout.strip().splitlines()
    return Engine(name, reason)


def test_the_quickstart_recipe_runs_with_its_own_settings(vllm_model, tmp_path):
    recipe = yaml.safe_load((files("capgap") / "recipes" / "quickstart.yaml").read_text())
    assert recipe["evaluation"]["dtype"] == "auto" and recipe["evaluation"].get("backend", "auto") == "auto"
    assert all(t.get("backend", "auto") == "auto" for t in recipe["teachers"] if t["kind"] == "model")
    recipe["tasks"][0]["options"]["n"] = 60
    recipe["tasks"][0]["pool"] = {"first": 12}
    recipe["tasks"][0]["test"] = {"rest": True, "limit": 6}
    recipe["students"] = [str(vllm_model)]
    assert [t["kind"] for t in recipe["teachers"]] == ["reference", "model"] and len(recipe["seeds"]) >= 3
    recipe["teachers"] = [recipe["teachers"][0], {**recipe["teachers"][1], "model": str(vllm_model)}]
    # the tiny model's byte-level tokenizer spends ~4x SmolLM2's tokens on the recipe's one-shot prompt (about
    # 300 tokens with its rationale there, under max_length 384): the limit scales with it
    recipe["training"]["max_length"] *= 4
    config = tmp_path / "quickstart.yaml"
    config.write_text(yaml.safe_dump(recipe))
    run = capgap("run", str(config), "--store", str(tmp_path / "s.sqlite"), default_engine=True)
    assert run.returncode == 0, run.stderr[-2000:]
    auto, engine = decide("auto"), _auto_engine()
    assert f"engine: {engine.name} ({engine.reason})" in run.stderr
    assert f"precision: cpu, {auto.dtype} generation, {auto.train} training ({auto.reason})" in run.stderr
    with Store(tmp_path / "s.sqlite") as store:
        done = [c for c in store.study.cells("quickstart") if c["status"] == "done"]
        assert done, run.stderr[-2000:]
        for cell in done:
            assert json.loads(cell["precision_json"])["train"] == auto.train
            assert cell["steps"] == recipe["training"]["steps"]
            assert json.loads(cell["training_json"])["learning_rate"] == recipe["training"]["learning_rate"]
            assert len(json.loads(cell["test_items_json"])) == 6
            post = store.evaluation(cell["post_eval_key"]).spec
            pre = store.evaluation(cell["pre_eval_key"]).spec
            assert post["dtype"] == auto.dtype and post.get("backend", "hf") == engine.name
            assert post.get("engine") == pre.get("engine")  # pre and post from one engine and its settings
            assert json.loads(cell["evaluation_json"]).get("engine") == post.get("engine")  # in the cell key
    assert (tmp_path / "quickstart" / "report.html").is_file()
