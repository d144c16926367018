"""The shipped examples for a yes/no task and a multiple-choice task, run as a new user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from capgap.config import load_config
from capgap.study.data import prepare_task, training_examples
from capgap.study.teachers import gather
from capgap.study.validate import check_file
from tests.conftest import shared_data

EXAMPLES = Path(__file__).parents[2] / "examples"
FACTS = ["Fish breathe with gills.", "Gills work in water."]


def release_files(folder: Path) -> None:
    """Small files in the shapes the StrategyQA releases use (questions written here, not copied)."""
    train = [{"qid": f"q{i}", "term": "t", "description": "d", "question": f"Is {i} an even number?",
              "answer": i % 2 == 0, "facts": [f"{i} ends in the digit {i % 10}.", "Even numbers end in 0-8."],
              "decomposition": ["..."]} for i in range(30)]
    test = [{"instruction": f"Is {i} an even number? ", "label": str(i % 2 == 0)} for i in range(28, 40)]
    (folder / "strategyqa_train.json").write_text(json.dumps(train))
    (folder / "strategyQA_test.json").write_text(json.dumps(test))  # 28 and 29 are training questions too

    def rationales(name: str, ending) -> None:
        rows = [{"instruction": r["question"], "output": f"{i} ends in {i % 10}. {ending(i, r['answer'])}"}
                for i, r in enumerate(train)]
        (folder / name).write_text(json.dumps(rows))

    rationales("stqa_human_annotation.json", lambda i, a: f"The answer is {a}")
    rationales("stqa_llama_level3_ranked.json", lambda i, a: f"so ans is {a}" if i % 3 else "The answer is True")
    rationales("stqa_gemini_level3_ranked.json", lambda i, a: "The answer is True or False" if i < 5 else
               f"Final answer: {'Yes' if a else 'No'}")
    rationales("strategyQA_chatgpt_level_3_ranked.json", lambda i, a: f"Thus, the answer is **{str(a).lower()}**.")


def test_the_yes_no_example_runs_from_release_files_with_no_script(tmp_path):
    release_files(tmp_path)
    result = check_file(EXAMPLES / "strategyqa-yes-no.yaml", str(tmp_path))
    assert result.problems == []
    plan = "\n".join(result.plan)
    # 30 training records, the first 8 with facts kept apart as worked examples; 12 test records less the 2
    # that are training questions too
    assert "task strategyqa: 22 training questions, 10 test items, disjoint" in plan
    assert "teacher human: rationales for 22 of 22 pool questions, 100.0% correct" in plan
    assert "teacher llama-3-70b: rationales for 22 of 22 pool questions, 81.8% correct" in plan  # 4 "True" wrong
    assert ("teacher gemini-1.5-flash: rationales for 22 of 22 pool questions, 100.0% correct" in plan
            and "hedge" not in plan.split("gemini")[1].split("\n")[0])  # its 5 hedges are among the 8 shots' items
    config = load_config(EXAMPLES / "strategyqa-yes-no.yaml", str(tmp_path))
    st = prepare_task(config.tasks[0], 0, config.data_dir)
    llama = gather(config.teachers[1], config, st, None, None)
    texts = {r.item_id: r.text for r in llama.rationales}
    assert texts["q11"] == "11 ends in 1. The answer is no."  # "so ans is False": one phrase, one form
    assert texts["q10"] == "10 ends in 0. The answer is yes."
    assert texts["q9"] == "9 ends in 9. The answer is yes."  # "The answer is True" for odd 9: wrong
    gpt = gather(config.teachers[3], config, st, None, None)
    assert all(r.text.endswith(("The answer is yes.", "The answer is no.")) for r in gpt.rationales)


def test_hedged_teacher_rationales_are_counted_and_kept_out_of_training(tmp_path):
    release_files(tmp_path)
    config = load_config(EXAMPLES / "strategyqa-yes-no.yaml", str(tmp_path))
    config.tasks[0].pool.first = None  # the pool from record 1: the gemini hedges (records 0-4) are in it
    config.tasks[0].options["exemplars"] = 0
    st = prepare_task(config.tasks[0], 0, config.data_dir)
    gemini = gather(config.teachers[2], config, st, None, None)
    assert gemini.notes[-1] == "5 rationale(s) hedge between answers (scored wrong, never trained on)"
    assert gemini.accuracy == pytest.approx(25 / 30)
    hedged = {f"q{i}" for i in range(5)}
    for protocol in ("own-correct", "unfiltered"):
        assert not hedged & {e.item_id for e in training_examples(protocol, gemini, [gemini])}


@pytest.mark.slow
def test_the_multiple_choice_example_runs_end_to_end(tmp_path):
    shared_data("aqua", "test.json")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    config = EXAMPLES / "aqua-multiple-choice-cpu.yaml"
    run = subprocess.run([sys.executable, "-m", "capgap", "run", str(config), "--store", str(tmp_path / "s.sqlite"),
                          "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=3000)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = subprocess.run([sys.executable, "-m", "capgap", "report", str(tmp_path / "run"), "--format", "json",
                             "-o", str(tmp_path / "r.json")], capture_output=True, text=True, env=env)
    assert report.returncode == 0, report.stderr
    study = json.loads((tmp_path / "r.json").read_text())["studies"][0]
    cells = study["cells"]
    assert {c["teacher"] for c in cells} == {"human", "gemma3-270m"} and all(c["task"] == "aqua" for c in cells)
    for cell in cells:
        assert cell["n_items"] == 30
        failures = cell["answer_failures"]
        assert failures["max_new_tokens"] == 160
        assert all(0 <= failures[side][k] <= 1 for k in ("truncated", "no_answer_strict", "no_answer_flexible")
                   for side in ("pre", "post"))


@pytest.mark.parametrize("shuffle", [False, True])
def test_validate_warns_when_one_letter_is_the_gold_of_most_test_items(tmp_path, shuffle):
    shared_data("bigbench", "bigbench_date_understanding_task.json")
    options = {"fields": {"question": "input", "answer": "target_scores", "options": "target_scores"},
               "answer_type": "choice", **({"shuffle_options": True} if shuffle else {})}
    study = {"name": "dates", "data_dir": str(shared_data()), "students": ["smollm2-135m-instruct"],
             "tasks": [{"name": "dates", "kind": "jsonl", "options": options, "pool": {"first": 100},
                        "test": {"rest": True}}],
             "teachers": [{"name": "small", "kind": "model", "model": "gemma3-270m"}]}
    study["tasks"][0]["options"]["data"] = "bigbench/bigbench_date_understanding_task.json"
    (tmp_path / "s.yaml").write_text(json.dumps(study))
    result = check_file(tmp_path / "s.yaml")
    assert result.problems == []
    warning = [line for line in result.plan if "warning" in line]
    if shuffle:
        assert warning == []
    else:  # 369 items (no rationales, so no worked examples kept apart), 100 in the pool; 364 golds are (A)
        assert warning == ["  warning: the gold is (A) for 265 of 269 test items, so answering (A) every time scores "
                           "99%; set the task option shuffle_options: true"]
