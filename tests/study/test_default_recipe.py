"""The shipped quickstart's decisions (auto precision, its training and evaluation settings) run end to end.

Other tests pin float32 and small settings; this one keeps the recipe's own training and evaluation sections
and `dtype: auto` (bf16 generation and bf16-autocast training on bf16-capable CPUs such as this one), and
swaps only the models and the data size for tiny ones, so the default path is exercised in the fast suite.
"""

import json
from importlib.resources import files

import yaml

from capgap.models import decide
from capgap.store import Store
from tests.study.test_grid import capgap


def test_the_quickstart_recipe_runs_with_its_own_settings(tiny_model, tiny_plain_model, tmp_path):
    recipe = yaml.safe_load((files("capgap") / "recipes" / "quickstart.yaml").read_text())
    assert recipe["evaluation"]["dtype"] == "auto"
    recipe["tasks"][0]["options"]["n"] = 60
    recipe["tasks"][0]["pool"] = {"first": 12}
    recipe["tasks"][0]["test"] = {"rest": True, "limit": 6}
    recipe["students"] = [str(tiny_model)]
    recipe["teachers"] = [recipe["teachers"][0], {**recipe["teachers"][1], "model": str(tiny_plain_model)}]
    config = tmp_path / "quickstart.yaml"
    config.write_text(yaml.safe_dump(recipe))
    run = capgap("run", str(config), "--store", str(tmp_path / "s.sqlite"))
    assert run.returncode == 0, run.stderr[-2000:]
    auto = decide("auto")
    assert f"precision: cpu, {auto.dtype} generation, {auto.train} training ({auto.reason})" in run.stderr
    with Store(tmp_path / "s.sqlite") as store:
        done = [c for c in store.study.cells("quickstart") if c["status"] == "done"]
        assert done, run.stderr[-2000:]
        for cell in done:
            assert json.loads(cell["precision_json"])["train"] == auto.train
            assert cell["steps"] == recipe["training"]["steps"]
            assert json.loads(cell["training_json"])["learning_rate"] == recipe["training"]["learning_rate"]
            assert store.evaluation(cell["post_eval_key"]).spec["dtype"] == auto.dtype
    assert (tmp_path / "quickstart" / "report.html").is_file()
