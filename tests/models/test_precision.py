"""`auto` precision is a decision that follows what the machine measurably supports, and says why."""

import pytest

from capgap.errors import CapgapError
from capgap.models import precision
from capgap.models.precision import decide


@pytest.mark.parametrize("faster,dtype,train", [(True, "bfloat16", "bf16-autocast"), (False, "float32", "fp32")])
def test_auto_on_a_cpu_follows_the_bf16_timing_probe(monkeypatch, faster, dtype, train):
    monkeypatch.delenv("CAPGAP_DTYPE", raising=False)
    monkeypatch.setattr(precision, "bf16_faster_on_cpu", lambda: (faster, "bf16 1.0 ms vs fp32 2.0 ms"))
    chosen = decide("auto")
    assert (chosen.device, chosen.dtype, chosen.train) == ("cpu", dtype, train)
    assert chosen.reason == f"auto: bf16 is {'' if faster else 'not '}faster on this CPU (bf16 1.0 ms vs fp32 2.0 ms)"


def test_this_machine_gets_the_dtype_its_own_probe_measures(monkeypatch):
    monkeypatch.delenv("CAPGAP_DTYPE", raising=False)
    faster, timing = precision.bf16_faster_on_cpu()
    assert decide("auto").dtype == ("bfloat16" if faster else "float32") and timing in decide("auto").reason


def test_the_environment_switch_and_explicit_requests(monkeypatch):
    monkeypatch.setenv("CAPGAP_DTYPE", "float32")
    forced = decide("auto")
    assert (forced.dtype, forced.train, forced.reason) == ("float32", "fp32", "CAPGAP_DTYPE=float32 in the environment")
    assert decide("bfloat16").train == "bf16-autocast"  # an explicit request wins over the environment
    monkeypatch.setenv("CAPGAP_DTYPE", "fp8")
    with pytest.raises(CapgapError, match="CAPGAP_DTYPE='fp8' is not a dtype"):
        decide("auto")
    with pytest.raises(CapgapError, match="float16 is not supported on a CPU"):
        decide("float16")
    with pytest.raises(CapgapError, match="unknown dtype 'half'"):
        decide("half")
