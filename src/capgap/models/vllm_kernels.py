"""vLLM's own fused CPU kernels for RMSNorm and SiLU-and-multiply, in the eager engine capgap runs on CPUs.

vLLM's x86 CPU build ships `torch.ops._C.rms_norm`, `fused_add_rms_norm` and `silu_and_mul`, but its eager
path (0.32) runs these layers as chains of PyTorch ops (the kernels serve its PowerPC and GPU paths). capgap
plugs layers that call them through vLLM's out-of-tree hook (`CustomOp.register_oot`): each RMSNorm and
SiluAndMul the engine builds is then one of these. A layer the kernels do not cover (a strided input, a row
width off their vector, a weight or residual in another dtype, no weight, a variance over part of the row, a
SiLU-and-multiply over fewer than `SILU_KERNEL_ROWS` rows) runs vLLM's own code.

Measured here (SmolLM2-135M, bf16, 128 rows x 128 tokens): 1,159-1,238 tokens/s vs 1,032-1,112 without; with
SiLU-and-multiply's kernel kept to prefill-sized steps (`SILU_KERNEL_ROWS`), 879-888 vs 828-867 on every step
(another, slower hour).
They round otherwise in bf16 (76 of 128 greedy texts equal), so the engine key says which ran (`cpu_kernels`).
The hook is process-wide and reaches only engines in this process (capgap's in-process engine): `use` plugs
the layers in or takes them out before an engine starts.
"""

from __future__ import annotations

import functools

VECTOR = 32  # the kernels take rows whose width is a multiple of their vector's elements (16 or 32); else native
# silu_and_mul's kernel costs ~2 us a row here: twice PyTorch's ops at a decode step's rows (128: 250 vs 114 us),
# half of them at a prefill's (2,048: 3.9 vs 7.4 ms, where PyTorch's temporaries leave the cache). Below this
# many rows a step runs vLLM's own code. The RMSNorm kernels win at every size (128 rows: 15 vs 158 us).
SILU_KERNEL_ROWS = 640
KEY = f"fused (silu_and_mul from {SILU_KERNEL_ROWS} rows)"  # the engine key's `cpu_kernels` when plugged in


def use(fused: bool) -> None:
    """Plug the fused layers into vLLM (or take them out) for the engines this process starts next."""
    from vllm.model_executor.custom_op import CustomOp, op_registry_oot

    for name, layer in _layers().items():
        if fused:
            op_registry_oot.pop(name, None)
            CustomOp.register_oot(layer, name=name)
        elif op_registry_oot.get(name) is layer:
            del op_registry_oot[name]


@functools.cache
def _layers() -> dict[str, type]:
    """The two layer classes, built once (they subclass vLLM's, so vLLM is imported only when an engine starts)."""
    import torch
    from vllm.model_executor.layers.activation import SiluAndMul
    from vllm.model_executor.layers.layernorm import RMSNorm

    class FusedRMSNorm(RMSNorm):
        def forward_cpu(self, x: torch.Tensor, residual: torch.Tensor | None = None):
            weight = self.weight.data
            if (self.variance_size_override is not None or not self.has_weight or weight.dtype != x.dtype
                    or x.shape[-1] % VECTOR or not x.is_contiguous()
                    or (residual is not None and (residual.dtype != x.dtype or not residual.is_contiguous()))):
                return self.forward_native(x, residual)
            if residual is None:
                out = torch.empty_like(x)
                torch.ops._C.rms_norm(out, x, weight, self.variance_epsilon)
                return out
            torch.ops._C.fused_add_rms_norm(x, residual, weight, self.variance_epsilon)  # both in place
            return x, residual

    class FusedSiluAndMul(SiluAndMul):
        def forward_cpu(self, x: torch.Tensor) -> torch.Tensor:
            if (x.shape[-1] // 2) % VECTOR or not x.is_contiguous() or x.numel() < SILU_KERNEL_ROWS * x.shape[-1]:
                return self.forward_native(x)
            out = torch.empty((*x.shape[:-1], x.shape[-1] // 2), dtype=x.dtype, device=x.device)
            torch.ops._C.silu_and_mul(out, x)
            return out

    return {"RMSNorm": FusedRMSNorm, "SiluAndMul": FusedSiluAndMul}
