from pathlib import Path

import pytest
import yaml

from capgap.config import load_config, parse
from capgap.errors import CapgapError
from capgap.study.validate import validate_file
from tests.conftest import SHARED_DATA
from tests.study.test_examples import release_files

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("src/capgap/recipes/*.yaml")])


def test_there_are_shipped_configs():
    assert {p.name for p in SHIPPED} >= {"quickstart.yaml", "svamp-six-teachers.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_validates(path, tmp_path):
    config = load_config(path)
    assert config.tasks and config.students and config.teachers
    data_dir = None
    if config.data_dir is None and path.name == "strategyqa-yes-no.yaml":  # files the user fetches: built here
        release_files(tmp_path)
        data_dir = str(tmp_path)
    elif config.data_dir and "shared" in config.data_dir and not SHARED_DATA.exists():
        pytest.skip("../shared/data is absent")
    assert validate_file(path, data_dir) == []


def test_every_problem_is_reported_with_its_path():
    _, problems = parse({
        "name": "x",
        "tasks": [{"name": "arith", "pool": {"first": 5, "rest": True}, "test": {}}],
        "students": [],
        "teachers": [{"name": "a", "kind": "modle"}, {"name": "a", "kind": "model", "sampels": 2},
                     {"name": "b", "kind": "imported"}],
        "protocols": ["own-corect"],
        "training": {"steps": "many", "learning_rate": "2e-4"},
        "evaulation": {},
    })
    text = "\n".join(problems)
    for expected in [
        "tasks[0].pool: choose exactly one of first or match_file (got first, rest)",
        "tasks[0].pool.rest: only a test split can be the rest",
        "tasks[0].test: choose exactly one of first, match_file or rest (got none)",
        "teachers[0].kind: 'modle' is not one of: reference, model, imported",
        "teachers[1].sampels: unknown key (did you mean 'samples'?)",
        "teachers[1].model: required for a model teacher",
        "teachers[1].name: 'a' names two teachers (also teachers[0])",
        "teachers[2].files: required for an imported teacher",
        "protocols[0]: unknown protocol 'own-corect' (did you mean 'own-correct'?)",
        "training.steps: expected int, got str 'many'",
        "evaulation: unknown key (did you mean 'evaluation'?)",
        "students: must list at least one entry",
    ]:
        assert expected in text, f"missing: {expected}\n{text}"
    assert "learning_rate" not in text  # "2e-4" is a number YAML 1.1 leaves as a string


def test_load_config_raises_one_error_naming_all_problems(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "tasks": [], "students": ["m"], "teachers": []}))
    with pytest.raises(CapgapError, match=r"2 problem\(s\): tasks: must list.*; teachers: must list"):
        load_config(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntasks: [\n")
    with pytest.raises(CapgapError, match=r"broken.yaml line \d+: not valid YAML"):
        load_config(broken)


def test_validate_finds_data_problems(tmp_path):
    config = {"name": "v", "students": ["smollm"], "teachers": [{"name": "t", "kind": "imported",
                                                                  "files": ["nope.json"]}],
              "tasks": [{"name": "arith", "options": {"n": 20}, "pool": {"first": 15}, "test": {"first": 10}}]}
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(config))
    problems = "\n".join(validate_file(path))
    assert "students[0]: unknown model 'smollm'" in problems
    assert "tasks[0]: 10 test items also appear in the training pool" in problems
    config["tasks"][0]["test"] = {"rest": True}
    path.write_text(yaml.safe_dump(config))
    problems = "\n".join(validate_file(path))
    assert "teachers[0] on tasks[0]: data file" in problems and "nope.json not found" in problems


def sound_config() -> dict:
    """A config with no problem: one teacher of each kind, every section given."""
    return {
        "name": "sound",
        "tasks": [{"name": "arith", "options": {"n": 50}, "pool": {"first": 10}, "test": {"rest": True}}],
        "students": ["smollm2-135m-instruct"],
        "teachers": [{"name": "ref", "kind": "reference"},
                     {"name": "gen", "kind": "model", "model": "gemma3-270m"},
                     {"name": "imp", "kind": "imported", "files": ["rationales.json"]}],
        "protocols": ["own-correct"],
        "seeds": [0],
        "training": {},
        "evaluation": {"prompt": {"style": "zero-shot-cot"}},
    }


def with_changes(changes: dict) -> dict:
    """The sound config with each "a.0.b" key set to its value (None as a value deletes the key)."""
    config = sound_config()
    for dotted, value in changes.items():
        *parents, last = [int(k) if k.isdigit() else k for k in dotted.split(".")]
        target = config
        for key in parents:
            target = target[key]
        if value is None:
            target.pop(last, None)
        elif isinstance(target, list) and last == len(target):
            target.append(value)
        else:
            target[last] = value
    return config


def test_the_sound_config_has_no_problem():
    config, problems = parse(sound_config())
    assert problems == [] and config is not None
    assert parse(with_changes({"name": "ok-name_1.v2", "seeds": [0, 1, 2**32 - 1]}))[1] == []
    few_shot = {"evaluation.prompt": {"style": "few-shot-cot", "shots": 8}, "training.epochs": 1.5,
                "training.steps": None, "teachers.1.temperature": 0, "teachers.2.questions_file": "q.json",
                "teachers.2.cut_at": "\n\nQ:", "tasks.0.options": {"n": 50, "max_steps": 3}}
    assert parse(with_changes(few_shot))[1] == []


BAD_VALUES = [
    # a split's own source: only for tasks that read data, in the shape the task takes
    ({"tasks.0.pool.data": "train.jsonl"}, "tasks[0].pool.data: task kind 'arith' takes no 'data' option"),
    ({"tasks.0.kind": "jsonll"}, "tasks[0].kind: unknown task kind 'jsonll' (did you mean 'jsonl'?)"),
    ({"tasks.0.name": "my/qa", "tasks.0.kind": "arith"}, "tasks[0].name: 'my/qa' is not a plain name"),
    ({"tasks.0.pool": {"limit": 5}}, "tasks[0].pool: choose exactly one of first or match_file (got none), or give"),
    # counts: 0 or negative is out of range, with the field path, the value and the valid range
    ({"tasks.0.test.limit": -3}, "tasks[0].test.limit: -3 is out of range; must be >= 1"),
    ({"tasks.0.test.limit": 0}, "tasks[0].test.limit: 0 is out of range; must be >= 1"),
    ({"tasks.0.pool.first": 0}, "tasks[0].pool.first: 0 is out of range; must be >= 1"),
    ({"tasks.0.pool.first": -5}, "tasks[0].pool.first: -5 is out of range; must be >= 1"),
    ({"evaluation.max_new_tokens": 0}, "evaluation.max_new_tokens: 0 is out of range; must be between 1 and 131072"),
    ({"evaluation.batch_size": 0}, "evaluation.batch_size: 0 is out of range; must be between 1 and 4096"),
    ({"teachers.1.samples": 0}, "teachers[1].samples: 0 is out of range; must be between 1 and 100"),
    ({"teachers.1.max_new_tokens": -1}, "teachers[1].max_new_tokens: -1 is out of range; must be between 1 and 131072"),
    ({"training.max_length": 0}, "training.max_length: 0 is out of range; must be between 1 and 131072"),
    ({"training.lora_r": 0}, "training.lora_r: 0 is out of range; must be between 1 and 1024"),
    ({"training.lora_alpha": -8}, "training.lora_alpha: -8 is out of range; must be between 1 and 65536"),
    ({"training.steps": 0}, "training.steps: 0 is out of range; must be between 1 and 1000000"),
    ({"training.batch_size": 0}, "training.batch_size: 0 is out of range; must be between 1 and 4096"),
    ({"training.grad_accum": 0}, "training.grad_accum: 0 is out of range; must be between 1 and 4096"),
    ({"evaluation.prompt": {"style": "few-shot-cot", "shots": 9}},
     "evaluation.prompt.shots: 9 is out of range; must be between 1 and 8"),
    ({"evaluation.prompt": {"style": "few-shot-cot", "shots": 0}},
     "evaluation.prompt.shots: 0 is out of range; must be between 1 and 8"),
    ({"teachers.1.prompt": {"style": "few-shot-cot", "shots": -2}},
     "teachers[1].prompt.shots: -2 is out of range; must be between 1 and 8"),
    # real numbers: range, and finite
    ({"training.epochs": 0, "training.steps": None}, "training.epochs: 0.0 is out of range; must be > 0 and <= 1000"),
    ({"training.epochs": -1, "training.steps": None}, "training.epochs: -1.0 is out of range; must be > 0 and <= 1000"),
    ({"training.warmup_ratio": 1}, "training.warmup_ratio: 1.0 is out of range; must be >= 0 and < 1"),
    ({"training.warmup_ratio": -0.1}, "training.warmup_ratio: -0.1 is out of range; must be >= 0 and < 1"),
    ({"training.learning_rate": 0}, "training.learning_rate: 0.0 is out of range; must be > 0 and <= 1"),
    ({"training.learning_rate": -1e-4}, "training.learning_rate: -0.0001 is out of range; must be > 0 and <= 1"),
    ({"training.learning_rate": float("nan")}, "training.learning_rate: nan is not a finite number"),
    ({"training.learning_rate": "inf"}, "training.learning_rate: inf is not a finite number"),
    ({"teachers.1.temperature": -0.5}, "teachers[1].temperature: -0.5 is out of range; must be between 0 and 5"),
    ({"teachers.1.temperature": float("inf")}, "teachers[1].temperature: inf is not a finite number"),
    ({"teachers.1.temperature": 0, "teachers.1.samples": 3},
     "teachers[1].samples: 3 samples at temperature 0 repeat one greedy rationale"),
    ({"teachers.2.params": 0}, "teachers[2].params: 0.0 is out of range; must be > 0"),
    # seeds: non-negative integers below 2**32, each once
    ({"seeds": [-1]}, "seeds[0]: -1 is out of range; must be >= 0 and < 4294967296"),
    ({"seeds": [2**70]}, "seeds[0]: 1180591620717411303424 is out of range; must be >= 0 and < 4294967296"),
    ({"training.steps": 10**12}, "training.steps: 1000000000000 is out of range; must be between 1 and 1000000"),
    ({"training.lora_r": 10**9}, "training.lora_r: 1000000000 is out of range; must be between 1 and 1024"),
    ({"training.max_length": 10**9}, "training.max_length: 1000000000 is out of range; must be between 1 and 131072"),
    ({"training.batch_size": 10**9}, "training.batch_size: 1000000000 is out of range; must be between 1 and 4096"),
    ({"training.learning_rate": 3.0}, "training.learning_rate: 3.0 is out of range; must be > 0 and <= 1"),
    ({"teachers.1.samples": 10**6}, "teachers[1].samples: 1000000 is out of range; must be between 1 and 100"),
    ({"seeds": [0, 2**32]}, "seeds[1]: 4294967296 is out of range; must be >= 0 and < 4294967296"),
    ({"seeds": [3, 1, 3]}, "seeds[2]: 3 repeats seeds[0]; list each entry once"),
    ({"seeds": [1.5]}, "seeds[0]: expected int, got float 1.5"),
    ({"seeds": []}, "seeds: must list at least one entry"),
    # duplicates
    ({"protocols": ["own-correct", "intersection", "own-correct"]},
     "protocols[2]: 'own-correct' repeats protocols[0]; list each entry once"),
    ({"protocols": []}, "protocols: must list at least one entry"),
    ({"students": ["gemma3-270m", "gemma3-270m"]}, "students[1]: 'gemma3-270m' repeats students[0]"),
    ({"tasks.1": {"name": "arith", "pool": {"first": 5}, "test": {"rest": True}}},
     "tasks[1].name: 'arith' names two tasks (also tasks[0]); names must be unique"),
    # fields of one teacher kind given to another
    ({"teachers.1.files": ["x.json"]}, "teachers[1].files: only imported teachers take files (kind here is 'model')"),
    ({"teachers.1.rationale_field": "r"},
     "teachers[1].rationale_field: only imported teachers take rationale_field (kind here is 'model')"),
    ({"teachers.0.strip_prefix": "A:"},
     "teachers[0].strip_prefix: only imported teachers take strip_prefix (kind here is 'reference')"),
    ({"teachers.2.prompt": {"style": "few-shot-cot"}},
     "teachers[2].prompt: only model teachers take prompt (kind here is 'imported')"),
    ({"teachers.2.samples": 2}, "teachers[2].samples: only model teachers take samples (kind here is 'imported')"),
    ({"teachers.2.temperature": 0.5},
     "teachers[2].temperature: only model teachers take temperature (kind here is 'imported')"),
    ({"teachers.0.model": "gemma3-270m"},
     "teachers[0].model: only model teachers take model (kind here is 'reference')"),
    # fields that would be ignored
    ({"evaluation.prompt": {"shots": 2}},
     "evaluation.prompt.shots: only few-shot-cot prompts take shots (style here is 'zero-shot-cot')"),
    ({"training.method": "full", "training.lora_r": 8},
     "training.lora_r: only LoRA runs take lora_r (method here is 'full')"),
    ({"training.processes": 3}, "training.processes: 3 processes cannot share batches of 8 equally; make "
                                "batch_size a multiple of processes"),
    ({"training.processes": 0}, "training.processes: 0 is out of range; must be between 1 and 64"),
    ({"training.epochs": 2, "training.steps": 50},
     "training.steps: is ignored when epochs is set; give only one of them"),
    ({"tasks.0.pool.match_field": "q"},
     "tasks[0].pool.match_field: applies only with match_file; set match_file or drop match_field"),
    ({"teachers.2.cut_at": "Q:"},
     "teachers[2].cut_at: applies only with questions_file; set questions_file or drop cut_at"),
    ({"teachers.2.questions_file": "q.json", "teachers.2.rationale_field": "r"},
     "teachers[2].rationale_field: is ignored when questions_file is set; give only one of them"),
    ({"teachers.2.question_field": ""}, "teachers[2].question_field: must not be an empty string"),
    ({"data_dir": ""}, "data_dir: must not be an empty string"),
    # task options: checked against the task's own option names and ranges
    ({"tasks.0.options": {"n": 50, "max_step": 3}},
     "tasks[0].options.max_step: unknown option (did you mean 'max_steps'?); valid names: max_operand, max_start, "
     "max_steps, max_value, min_steps, n, seed"),
    ({"tasks.0.options": {"data": "x.json"}}, "tasks[0].options.data: unknown option"),
    ({"tasks.0.options": {"n": -3}}, "tasks[0].options.n: -3 is out of range; must be between 1 and 1000000"),
    ({"tasks.0.options": {"n": "ten"}}, "tasks[0].options.n: expected int, got str 'ten'"),
    ({"tasks.0.options": {"n": None}}, "tasks[0].options.n: must not be empty"),
    ({"tasks.0.options": {"max_steps": 5}}, "tasks[0].options.max_steps: 5 is out of range; must be between 1 and 4"),
    ({"tasks.0.options": {"min_steps": 3, "max_steps": 2}},
     "tasks[0].options.min_steps: 3 is above max_steps (2); need min_steps <= max_steps"),
    ({"tasks.0.name": "jsonl", "tasks.0.options": {"data": "d.jsonl", "answer_type": "colour"}},
     "tasks[0].options.answer_type: unknown answer type 'colour'; valid: number, choice, yesno, string, math"),
    ({"tasks.0.name": "jsonl", "tasks.0.options": {"answer_type": "yesno"}},
     "tasks[0].options.data: required: the JSON / JSONL file of the items"),
    ({"tasks.0.name": "svamp", "tasks.0.options": {"data": "s.json", "n": 5}},
     "tasks[0].options.n: unknown option; valid names: data, duplicates, split"),
    ({"tasks.0.name": "arithm"}, "tasks[0].name: unknown task 'arithm' (did you mean 'arith'?)"),
    # a study name becomes a folder: a plain name only
    ({"name": "../escape"}, "name: '../escape' is not a plain name"),
    ({"name": "a/b"}, "name: 'a/b' is not a plain name"),
    ({"name": "/tmp/abs"}, "name: '/tmp/abs' is not a plain name"),
    ({"name": ".hidden"}, "name: '.hidden' is not a plain name"),
    ({"name": ".."}, "name: '..' is not a plain name"),
    ({"name": ""}, "name: must not be an empty string"),
]


@pytest.mark.parametrize(("changes", "expected"), BAD_VALUES, ids=[e.split(":")[0] for _, e in BAD_VALUES])
def test_each_bad_value_is_one_problem_naming_its_path(changes, expected):
    _, problems = parse(with_changes(changes))
    assert len(problems) == 1 and problems[0].startswith(expected), problems
    assert "\n" not in problems[0]


def test_help_text_and_error_text_share_the_range():
    from dataclasses import fields

    from capgap.config import PromptConfig, TrainingConfig

    help_of = {f.name: f.metadata["help"] for f in [*fields(TrainingConfig), *fields(PromptConfig)]}
    assert help_of["warmup_ratio"].endswith("(must be >= 0 and < 1)")
    assert "must be between 1 and 8; only few-shot-cot prompts" in help_of["shots"]
    assert "must be > 0 and <= 1" in help_of["learning_rate"] and "not with epochs" in help_of["steps"]


def test_task_options_help_does_not_list_option_names():
    from dataclasses import fields

    from capgap.config import TaskConfig
    from capgap.tasks import TASKS

    help_text = next(f for f in fields(TaskConfig) if f.name == "options").metadata["help"]
    assert "max_steps" not in help_text and "answer_type" not in help_text
    assert "max_steps" in TASKS["arith"].description and "answer_type" in TASKS["jsonl"].description


def test_load_config_rejects_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_changes({"tasks.0.options": {"max_step": 3}, "tasks.0.test.limit": -3})))
    with pytest.raises(CapgapError) as caught:
        load_config(bad)
    message = str(caught.value)
    assert "2 problem(s)" in message and "\n" not in message
    assert "tasks[0].options.max_step: unknown option (did you mean 'max_steps'?)" in message
    assert "tasks[0].test.limit: -3 is out of range; must be >= 1" in message


def test_load_task_rejects_unknown_and_mistyped_options():
    from capgap.tasks import load_task, task_options

    with pytest.raises(CapgapError, match=r"task 'arith': option 'max_step': unknown option \(did you mean "
                                          r"'max_steps'\?\)"):
        load_task("arith", n=5, max_step=2)
    with pytest.raises(CapgapError,
                       match=r"task 'svamp': option 'n': unknown option; valid names: data, duplicates, split"):
        load_task("svamp", n=5)
    with pytest.raises(CapgapError, match=r"option 'n': expected int, got str '5'"):
        load_task("arith", n="5")
    with pytest.raises(CapgapError, match=r"arith: n: -3 is out of range; must be between 1 and 1000000"):
        load_task("arith", n=-3)
    assert len(load_task("arith", n=5, max_steps=2, seed=None).items) == 5  # None: the default
    assert task_options("arith") == ("n", "seed", "min_steps", "max_steps", "max_start", "max_operand", "max_value")
    assert task_options("jsonl") == ("data", "split", "subset", "where", "fields", "answer_type", "duplicates",
                                     "shuffle_options", "exemplars")


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    text = yaml.safe_dump({k: v for k, v in sound_config().items() if k != "seeds"}, sort_keys=False)
    path.write_text(text + "seeds: [5]\nseeds: [1]\n")  # YAML alone would keep the last `seeds`
    with pytest.raises(CapgapError, match=rf"line {len(text.splitlines()) + 2}: key 'seeds' repeats the one on "
                                          rf"line {len(text.splitlines()) + 1}"):
        load_config(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text("name: a\ntraining:\n  steps: 2\n  steps: 3\n")
    assert validate_file(nested) == ["line 4: key 'steps' repeats the one on line 3; YAML would silently keep the "
                                     "last, so give it once"]


def test_a_config_that_is_not_utf8_is_one_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(CapgapError, match=r"latin1.yaml: not UTF-8 text \(byte 0xe9 at offset 9\); save the config"):
        load_config(path)


SECRET = "sk-proj-" + "a1B2c3D4" * 4


@pytest.mark.parametrize(("changes", "where", "kind"), [
    ({"teachers.1.api_key": SECRET}, "teachers[1].api_key", "an API key"),
    ({"teachers.1.model": "https://bob:hunter22@models.example.com/m"}, "teachers[1].model",
     "a URL with a password"),
    ({"tasks.0.options": {"data": "https://bob:hunter22@data.example.com/svamp.json"}}, "tasks[0].options.data",
     "a URL with a password"),
    ({"teachers.1.token": "plain-words-but-a-token-field"}, "teachers[1].token", "a secret (field 'token')"),
    ({"name": "hf_" + "x" * 30}, "name", "an API key"),
], ids=["api-key", "model-url", "data-url", "token-field", "hf-token"])
def test_a_secret_in_a_config_is_refused_and_never_echoed(changes, where, kind):
    _, problems = parse(with_changes(changes))
    mine = [p for p in problems if p.startswith(f"{where}:")]
    assert mine[0] == (f"{where}: holds {kind}; capgap takes credentials only from environment variables: keep the "
                       "key in the environment of the process, never in a config file or on the command line")
    secret = next(iter(changes.values()))
    secret = secret if isinstance(secret, str) else next(iter(secret.values()))
    assert not any(secret in p or "hunter22" in p for p in problems), problems
    assert parse(with_changes({"teachers.1.api_key_env": "OPENAI_API_KEY"}))[1] == [
        "teachers[1].api_key_env: unknown key; valid names: backend, budget, cut_at, draw, endpoint, files, id_field, "
        "kind, max_new_tokens, model, name, params, parts, prompt, question_field, questions_file, rationale_field, "
        "samples, strip_prefix, style, temperature"]


def test_names_that_only_resemble_secrets_are_accepted():
    lookalikes = {"name": "sk-learn-baseline-model-v2", "teachers.1.model": "HuggingFaceTB/SmolLM2-135M-Instruct",
                  "teachers.2.strip_prefix": "standard bearer responsibilities 2024"}
    assert parse(with_changes(lookalikes))[1] == []
