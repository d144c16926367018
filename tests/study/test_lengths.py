"""The answer-length probe of `capgap plan --lengths` / `capgap validate --lengths`: the limit a fair baseline needs."""

import yaml

from capgap.cli import main
from capgap.store import Store
from capgap.study.lengths import propose, sample


def test_the_proposed_limit_is_the_99th_percentile_rounded_up():
    lengths = [40] * 95 + [70, 80, 90, 100, 110]
    limit, cut = propose(lengths, probe_limit=384)
    assert cut == 0.0 and limit == 112  # p99 = 100.1 -> next multiple of 16 above it
    assert propose([384] * 3 + [50] * 97, probe_limit=384) == (None, 0.03)  # >1% ran past the probe itself
    assert sample(list(range(10)), 4) == [0, 3, 6, 9] and sample([1, 2], 5) == [1, 2]


def _config(tmp_path, tiny_model, max_new_tokens: int) -> str:
    study = {"name": "probe", "tasks": [{"name": "arith", "options": {"n": 30, "max_steps": 2},
                                         "pool": {"first": 10}, "test": {"rest": True}}],
             "students": [str(tiny_model)], "teachers": [{"name": "ref", "kind": "reference"}],
             "training": {"steps": 2}, "evaluation": {"max_new_tokens": max_new_tokens, "backend": "hf"}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return str(path)


def test_plan_measures_answer_lengths_and_leaves_the_store_alone(tiny_model, tmp_path, capsys):
    # the tiny random model never states an answer: every answer runs to the probe's limit (4 x 6 tokens)
    store = tmp_path / "results.sqlite"
    assert main(["plan", _config(tmp_path, tiny_model, 6), "--lengths", "5", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("arith ·"))
    assert "on 5 test items" in line and "max_new_tokens 6 cuts 100% of them" in line
    assert "100% ran past 24 tokens without looping" in line and "no limit here makes a fair baseline" in line
    assert not store.exists() or not Store(store, readonly=True).evaluations()


def test_a_negative_lengths_is_one_clear_error(tiny_model, tmp_path, capsys):
    assert main(["plan", _config(tmp_path, tiny_model, 6), "--lengths", "-1"]) == 2
    out = capsys.readouterr()
    assert "--lengths must be a number of test items" in out.err and out.out == ""  # nothing printed before it


def test_validate_measures_answer_lengths_after_its_plan(tiny_model, tmp_path, capsys):
    config = _config(tmp_path, tiny_model, 6)
    assert main(["validate", config, "--lengths", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{config}: ok"
    probe = [x for x in out if x.strip().startswith("arith ·")]
    assert len(probe) == 1 and "on 3 test items" in probe[0]
    assert out.index("Answer lengths before distillation (a fair baseline is not cut at its limit):") > 1
