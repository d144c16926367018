"""A client for OpenAI-compatible servers (vLLM `serve`, `transformers serve`, llama.cpp server, hosted APIs).

    client = Client(Endpoint(base_url="http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-7B-Instruct"))
    text, n_tokens = client.complete({"messages": [...], "max_tokens": 256, "temperature": 0})

Servers fail in ordinary ways: a timeout, 429 when over quota (with a Retry-After), 5xx while loading or
overloaded, a reply cut off mid-body or that is not the JSON it should be. Each is retried with exponential
backoff and full jitter (a Retry-After is honoured: never retried sooner than the server asked), up to
`retries` times; then one error line names the endpoint, what failed and what to change. 4xx replies other
than 408/409/429 are the request's fault and are not retried. The API key is read from the environment
variable the config names, sent only in the Authorization header, and never stored, logged or reported.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from capgap.errors import CapgapError
from capgap.knobs import knob
from capgap.redact import redact

RETRIED_STATUS = {408, 409, 429, 500, 502, 503, 504}
MAX_BACKOFF = 30.0  # seconds between two tries at most (a longer Retry-After is honoured as given)


ENV_NAME = (r"[A-Za-z_][A-Za-z0-9_]*", "the name of an environment variable (the key itself never goes in a config)")


@dataclass(frozen=True)
class Endpoint:
    """Where an OpenAI-compatible model is served, and how hard to try it: a teacher's `endpoint` section in
    the study YAML, `capgap eval --backend openai`'s flags and the client all use this class."""

    base_url: str = knob(required=True, help="the server's OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1 "
                                             "(vLLM serve, transformers serve, llama.cpp server, a hosted API)")
    model: str | None = knob(None, "the served model name the server knows it by (a teacher's `model`)",
                             internal=True)
    api_key_env: str | None = knob(None, "environment variable holding the API key (none for a local server)",
                                   pattern=ENV_NAME)
    concurrency: int = knob(8, "requests in flight at once (more: faster until the server queues them)", min=1,
                            max=1024)
    timeout: float = knob(300.0, "seconds a request may take before it is retried", above=0, max=86400)
    retries: int = knob(8, "tries after the first on timeouts, 429, 5xx and broken replies (backoff with jitter, "
                           "Retry-After honoured)", min=0, max=100)
    backoff: float = knob(1.0, "first wait in seconds; doubles with every retry (full jitter)", internal=True)

    def key(self) -> dict:
        """What of the endpoint determines its outputs: the served model (not the URL, never the key)."""
        return {"backend": "openai", "model": self.model}


class RetryableError(Exception):
    """A failure worth another try, with the wait the server asked for (None: back off)."""

    def __init__(self, what: str, retry_after: float | None = None, unreachable: bool = False):
        super().__init__(what)
        self.retry_after, self.unreachable = retry_after, unreachable


def _retry_after(headers) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: wait the backoff instead
        return None


class Client:
    """Requests to one endpoint, retried as the module docstring says; safe to share between threads."""

    def __init__(self, endpoint: Endpoint, sleep=time.sleep):
        self.endpoint, self._sleep = endpoint, sleep
        self.base = endpoint.base_url.rstrip("/")
        self.requests = 0  # every HTTP request sent, retries included (tests bound it)
        if endpoint.api_key_env and not os.environ.get(endpoint.api_key_env):
            raise CapgapError(f"endpoint {self.base}: environment variable {endpoint.api_key_env} (api_key_env) "
                              "is not set; export the API key there before running")

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.endpoint.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ[self.endpoint.api_key_env]}"
        return headers

    def _once(self, path: str, body: dict | None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=self._headers(),
                                         method="POST" if data is not None else "GET")
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.endpoint.timeout) as reply:
                raw = reply.read()
        except urllib.error.HTTPError as e:
            detail = redact(e.read()[:200].decode(errors="replace").strip())
            if e.code in RETRIED_STATUS:
                raise RetryableError(f"HTTP {e.code}", _retry_after(e.headers)) from None
            raise CapgapError(f"endpoint {self.base}{path} refused the request (HTTP {e.code}: {detail}); check "
                              "base_url, the served model name and api_key_env") from None
        except (TimeoutError, http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError) as e:
            raise RetryableError(type(e).__name__) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, ConnectionError)):  # a server restarting refuses for a while
                raise RetryableError(type(e.reason).__name__, unreachable=isinstance(e.reason, ConnectionError)) \
                    from None
            raise CapgapError(f"endpoint {self.base} cannot be reached ({e.reason}); check base_url and that the "
                              "server is running") from None
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RetryableError("a reply that is not valid JSON (cut off or malformed)") from None

    def call(self, path: str, body: dict | None = None) -> dict:
        """The JSON reply of one request, retried with backoff and jitter (Retry-After honoured)."""
        for attempt in range(self.endpoint.retries + 1):
            try:
                return self._once(path, body)
            except RetryableError as e:
                if attempt == self.endpoint.retries:
                    fix = ("cannot be reached: check base_url and that the server is running" if e.unreachable else
                           "the server is down or overloaded: raise retries/timeout or lower concurrency")
                    raise CapgapError(f"endpoint {self.base}{path} failed {attempt + 1} time(s) (last: {e}); {fix}, "
                                      "then run again (finished generations are kept)") from None
                wait = random.uniform(0, min(MAX_BACKOFF, self.endpoint.backoff * 2 ** attempt))
                self._sleep(max(wait, e.retry_after or 0.0))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def served_models(self) -> list[str]:
        reply = self.call("/models")
        try:
            return [m["id"] for m in reply["data"]]
        except (KeyError, TypeError):
            raise CapgapError(f"endpoint {self.base}/models did not list models as the OpenAI API does; check "
                              "that base_url ends with /v1") from None

    def complete(self, body: dict) -> tuple[str, int]:
        """(text, completion tokens) of a chat request (`messages` in body) or a plain completion (`prompt`).
        A reply without the text is malformed: retried like a broken one."""
        chat = "messages" in body
        for attempt in range(self.endpoint.retries + 1):
            reply = self.call("/chat/completions" if chat else "/completions", {**body, "model": self.endpoint.model})
            try:
                choice = reply["choices"][0]
                text = choice["message"]["content"] if chat else choice["text"]
                tokens = (reply.get("usage") or {}).get("completion_tokens", 0)
                if isinstance(text, str):
                    return text, int(tokens or 0)
            except (KeyError, IndexError, TypeError, ValueError):
                pass
            if attempt < self.endpoint.retries:
                self._sleep(random.uniform(0, min(MAX_BACKOFF, self.endpoint.backoff * 2 ** attempt)))
        raise CapgapError(f"endpoint {self.base} kept replying without a completion text; check that it serves "
                          "the OpenAI chat/completions API")
