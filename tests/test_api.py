"""`capgap.api`: every command as a function that returns data (the CLI only prints it), and the CLI's flags
generated from the settings' classes (one home for each default, range and choice list)."""

import json
from dataclasses import fields

import pytest
import yaml

import capgap
from capgap import api
from capgap.cli import build_parser, main
from capgap.config.schema import EvaluationConfig, TeacherConfig
from capgap.errors import CapgapError
from capgap.evaluation.prompts import CHAT_MODES, PROMPT_STYLES, PromptConfig
from capgap.models.backends import BACKEND_CHOICES
from capgap.models.precision import DTYPES
from capgap.models.serving import Endpoint
from capgap.report import RENDERERS
from tests.study.test_grid import write_config


def test_the_api_runs_plans_validates_and_reports_a_study(tiny_model, tiny_plain_model, tmp_path, capsys):
    config = write_config(tmp_path, tiny_model, tiny_plain_model, name="api")
    checked = capgap.validate(config)
    assert checked.problems == [] and any("cells" in line for line in checked.plan)
    result = capgap.run(config, store=tmp_path / "store.sqlite")
    assert capsys.readouterr().out == ""  # the API prints nothing: its caller does
    assert result.run_dir == tmp_path / "api" and [p.name for p in result.reports] == [
        "report.html", "report.md", "report.json"]
    assert result.study["study"] == "api" and len(result.study["cells"]) == 4
    trained = {(g["teacher"], g["protocol"]) for g in result.study["cells"] if g["gain"] is not None}
    assert {("gold", "unfiltered"), ("gold", "own-correct"), ("tutor", "unfiltered")} <= trained
    assert json.loads(result.reports[2].read_text())["studies"][0] == json.loads(json.dumps(result.study))
    written = api.report(result.run_dir, format="md", output=tmp_path / "again.md")
    assert written == tmp_path / "again.md" and "| teacher |" in written.read_text()
    planned = capgap.plan(config, store=tmp_path / "store.sqlite", detect="10pp")
    assert "4 of 4 cells finished" in planned.work and "test items needed" in planned.detection
    assert planned.lengths == []


def test_the_api_says_what_is_wrong_without_printing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "tasks": [], "students": ["nope"], "teachers": [],
                                   "evaluation": {"max_new_tokens": 0}}))
    problems = capgap.validate(bad).problems
    assert any("evaluation.max_new_tokens" in p and "out of range" in p for p in problems)
    assert capsys.readouterr().out == ""
    with pytest.raises(CapgapError, match="--lengths must be a number of test items"):
        capgap.validate(bad, lengths=-1)
    with pytest.raises(CapgapError, match="--keep must be at least 2"):
        capgap.select(bad, keep=1)
    with pytest.raises(CapgapError, match="--train-tflops must be a positive rate"):
        capgap.plan(bad, train_tflops=0)
    with pytest.raises(CapgapError, match="is not a capgap results store"):
        api.report(tmp_path)


def _flag(parser, command: str, flag: str):
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return next(a for a in sub._actions if flag in a.option_strings)


def test_eval_flags_are_generated_from_the_settings_classes():
    parser = build_parser()
    knobs = {f.name: f for cls in (EvaluationConfig, PromptConfig, Endpoint) for f in fields(cls)}
    for flag, name in (("--max-new-tokens", "max_new_tokens"), ("--batch-size", "batch_size"),
                       ("--shots", "shots"), ("--concurrency", "concurrency"), ("--prompt", "style")):
        assert _flag(parser, "eval", flag).default == knobs[name].default
        assert knobs[name].metadata["help"] in _flag(parser, "eval", flag).help
    assert _flag(parser, "eval", "--dtype").choices == list(DTYPES)
    assert _flag(parser, "eval", "--prompt").choices == list(PROMPT_STYLES)
    assert _flag(parser, "eval", "--chat").choices == list(CHAT_MODES)
    assert _flag(parser, "eval", "--backend").choices == list(BACKEND_CHOICES)
    assert _flag(parser, "eval", "--backend").default == next(
        f.default for f in fields(TeacherConfig) if f.name == "backend")
    assert _flag(parser, "report", "--format").choices == list(RENDERERS)
    for command in ("run", "select"):  # one executor group, declared once
        assert {"--executor", "--ray-address", "--cpus-per-job", "--gpus-per-job"} <= {
            s for a in next(a for a in parser._actions if a.dest == "command").choices[command]._actions
            for s in a.option_strings}


def test_a_flag_out_of_its_knobs_range_is_one_line_naming_the_flag(capsys):
    assert main(["eval", "--model", "x", "--task", "arith", "--shots", "9"]) == 2
    assert capsys.readouterr().err.strip() == "capgap: error: --shots: 9 is out of range; must be between 1 and 8"
    assert main(["eval", "--model", "x", "--task", "arith", "--concurrency", "0"]) == 2
    assert "--concurrency: 0 is out of range; must be between 1 and 1024" in capsys.readouterr().err


def test_prompt_config_is_the_yaml_section_and_checks_itself():
    from capgap.config import parse

    config, problems = parse({"name": "x", "tasks": [{"name": "arith", "pool": {"first": 4}, "test": {"rest": True}}],
                    "students": ["s"], "teachers": [{"name": "gold", "kind": "reference"}],
                    "evaluation": {"prompt": {"style": "few-shot-cot", "shots": 2}}})
    assert not problems and config.evaluation.prompt == PromptConfig("few-shot-cot", 2, "auto")
    with pytest.raises(CapgapError, match="few-shot-cot shots: 9 is out of range"):
        PromptConfig("few-shot-cot", 9).check()
    with pytest.raises(CapgapError, match="unknown prompt chat 'maybe'"):
        PromptConfig(chat="maybe").check()
