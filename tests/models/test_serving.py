"""The openai backend against a real OpenAI-compatible server (`transformers serve` with the tiny model on
127.0.0.1), directly and behind a proxy that fails a third of the requests."""

import json

import pytest

from capgap.cli import main
from capgap.config.schema import PromptConfig, TeacherConfig
from capgap.errors import CapgapError
from capgap.models.serving import Client, Endpoint
from capgap.store import Store
from capgap.tasks import load_task
from capgap.teachers.model import model_rationales
from tests.conftest import build_tiny_model
from tests.servers import FAULTS, FaultProxy, transformers_serve

pytest.importorskip("fastapi", reason="`transformers serve` needs the serving extra: pip install -e '.[serving]'")
KEY_ENV, KEY = "CAPGAP_TEST_API_KEY", "sk-test-" + "q7" * 16  # looks like a real key: it must never be stored


@pytest.fixture(scope="module")
def varied_model(tmp_path_factory):
    """The tiny model with larger random weights: its greedy replies differ from question to question."""
    return build_tiny_model(tmp_path_factory.mktemp("varied"), init_std=0.3)


@pytest.fixture(scope="module")
def server(varied_model, tmp_path_factory):
    with transformers_serve(varied_model, tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url


def teacher(base_url: str, model: str, retries: int = 12, chat: str = "auto") -> TeacherConfig:
    endpoint = Endpoint(base_url=base_url, api_key_env=KEY_ENV, concurrency=4, timeout=2.0, retries=retries)
    return TeacherConfig(name="served", kind="model", model=model, backend="openai", endpoint=endpoint,
                         prompt=PromptConfig(chat=chat), temperature=0.0, max_new_tokens=8, params=1e6)


def stored_generations(path) -> dict:
    with Store(path) as store:
        (key,) = [e.eval_key for e in store.evaluations()]
        return {item: (row["prompt"], row["generation"]) for item, row in store.items(key).items()}


def test_rationales_behind_a_faulty_proxy_equal_a_fault_free_run(server, varied_model, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    pool = load_task("arith", n=12, seed=3)
    with Store(tmp_path / "clean.sqlite") as store:
        clean = model_rationales(teacher(server, str(varied_model)), pool, store)
    with FaultProxy(server, every=3) as proxy, Store(tmp_path / "faulty.sqlite") as store:
        faulty = model_rationales(teacher(proxy.url, str(varied_model)), pool, store)
    assert faulty.rationales == clean.rationales and len(clean.rationales) == 12
    assert stored_generations(tmp_path / "faulty.sqlite") == stored_generations(tmp_path / "clean.sqlite")
    assert len({g for _, g in stored_generations(tmp_path / "clean.sqlite").values()}) == 12  # one per question
    n = len(proxy.log)
    assert len(proxy.faults) >= 0.2 * n and set(proxy.faults) == set(FAULTS)  # every kind of fault happened
    assert n <= 2 * (12 + 2)  # each fault costs one more request, no more: 12 items + 2 model listings
    assert all(auth == f"Bearer {KEY}" for _, auth, _ in proxy.log)  # the key is sent...
    for name in ("clean.sqlite", "faulty.sqlite"):  # ...and never stored (nor its variable's value anywhere)
        data = b"".join(p.read_bytes() for p in tmp_path.glob(f"{name}*"))
        assert KEY.encode() not in data and KEY_ENV.encode() not in data


def test_retry_after_is_honoured_and_a_dead_server_is_one_error_line(server, varied_model):
    waits: list[float] = []
    with FaultProxy(server, every=10**6, first=0, faults=("429",), retry_after="7") as proxy:
        client = Client(Endpoint(proxy.url, str(varied_model), backoff=0.01), sleep=waits.append)
        text, tokens = client.complete({"prompt": "Question: 1 + 1", "max_tokens": 3, "temperature": 0})
    assert waits and waits[0] >= 7 and client.requests == 2 and tokens == 3 and isinstance(text, str)
    with FaultProxy(server, every=1, first=0, faults=("500",)) as proxy:
        client = Client(Endpoint(proxy.url, str(varied_model), retries=2, backoff=0.01), sleep=waits.append)
        with pytest.raises(CapgapError, match=r"failed 3 time\(s\) \(last: HTTP 500\).*raise retries"):
            client.complete({"prompt": "Question: 1 + 1", "max_tokens": 3})
    assert client.requests == 3  # bounded: the first try and two retries


def test_bad_endpoint_settings_are_one_line_naming_the_fix(server, varied_model, tmp_path, monkeypatch):
    pool = load_task("arith", n=2, seed=3)
    monkeypatch.delenv(KEY_ENV, raising=False)
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(CapgapError, match=f"environment variable {KEY_ENV} .* is not set"):
            model_rationales(teacher(server, str(varied_model)), pool, store)
        monkeypatch.setenv(KEY_ENV, KEY)
        # a server that lists its models is checked before any request (transformers serve >= 5.20 lists the
        # model it was started with; 5.19 lists only Hub-cache models): else the server's own refusal is the line
        with pytest.raises(CapgapError, match=r"does not serve 'tiny'.*it serves: |endpoint .* (refused|failed)"):
            model_rationales(teacher(server, "tiny", retries=1), pool, store)
        with pytest.raises(CapgapError, match="cannot be reached"):
            model_rationales(teacher("http://127.0.0.1:9/v1", "x", retries=0), pool, store)
        assert store.evaluations() == []  # nothing half-recorded


@pytest.mark.parametrize("chat", ["off", "auto"])
def test_served_greedy_replies_equal_the_in_process_model(server, varied_model, tmp_path, monkeypatch, chat):
    """The same weights give the same greedy text through a server as in this process (plain completions of
    the same prompt text; chat: the server applies the same template)."""
    monkeypatch.setenv(KEY_ENV, KEY)
    pool = load_task("arith", n=6, seed=4)
    with Store(tmp_path / "s.sqlite") as store:
        served = model_rationales(teacher(server, str(varied_model), chat=chat), pool, store)
        local = model_rationales(TeacherConfig(name="served", kind="model", model=str(varied_model),
                                               prompt=PromptConfig(chat=chat), temperature=0.0, max_new_tokens=8,
                                               params=1e6), pool, store, dtype="float32")
    assert [r.text for r in served.rationales] == [r.text for r in local.rationales]


def test_capgap_eval_measures_a_served_model_as_it_measures_the_local_one(server, varied_model, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    common = ["eval", "--model", str(varied_model), "--task", "arith", "--n", "6", "--max-new-tokens", "8",
              "--chat", "off", "--store", str(store), "--json"]
    assert main([*common, "--backend", "openai", "--base-url", server, "--concurrency", "3"]) == 0
    served = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert main([*common, "--dtype", "float32"]) == 0
    local = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert served["n"] == local["n"] == 6 and served["dtype"] == "server" and served["eval_key"] != local["eval_key"]
    with Store(store) as s:
        keys = (served["eval_key"], local["eval_key"])
        texts = [{i: r["generation"] for i, r in s.items(key).items()} for key in keys]
    assert texts[0] == texts[1] and served["accuracy"] == local["accuracy"]
    assert main(["eval", "--model", "m", "--task", "arith", "--backend", "openai"]) == 2
    assert capsys.readouterr().err.strip() == ("capgap: error: --backend openai needs --base-url, the server's API "
                                               "root (e.g. http://127.0.0.1:8000/v1)")
