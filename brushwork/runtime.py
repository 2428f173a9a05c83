"""Device and precision, chosen once per run and passed down (never re-decided inside a loop)."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import torch

from brushwork.errors import BrushworkError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str  # "fp32" | "bf16"

    @property
    def channels_last(self) -> bool:
        # channels_last pays off together with bf16 (oneDNN / tensor cores); in fp32 on the CPU it does not.
        return self.precision == "bf16"

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout of this runtime's 4-D weights and inputs."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def available_memory(self) -> int | None:
        """Bytes free for this run's tensors on the device, or None when it cannot be told."""
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return int(free)
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def check_memory(self, needed: int, what: str, advice: str) -> None:
        """Refuse a run that cannot fit, with a clear line, instead of being killed midway."""
        available = self.available_memory()
        if available is not None and needed > 0.9 * available:
            raise BrushworkError(
                f"{what} needs about {needed / 2**30:.1f} GiB of memory but only {available / 2**30:.1f} GiB "
                f"is available on {self.device.type}: {advice}"
            )

    def prepare_module(self, module: torch.nn.Module) -> torch.nn.Module:
        # The memory format is set both ways: `Module.to` works in place, so a module shared with a bf16
        # runtime comes back channels_last, and fp32 convolutions over it round differently (a resumed
        # fp32 training run in a new process, with a fresh VGG, no longer matched the uninterrupted one).
        return module.to(self.device).to(memory_format=self.memory_format)

    def adopt_module(self, module: torch.nn.Module) -> torch.nn.Module:
        """A module the caller owns, ready for this runtime without changing the caller's: the module
        itself when it already is on this device in this layout, else a prepared copy.

        Why: `prepare_module` works in place, so a network passed to runtimes of two precisions flipped
        between layouts under its other users (a benchmark timed AdaIN's bf16 path on a network an fp32
        path had turned back to contiguous; the server's optimize jobs re-laid-out the network its fp32
        stylizers were reading). The copy costs one network's memory, only when the layouts differ.
        """
        if self._holds(module):
            return module
        return self.prepare_module(copy.deepcopy(module))

    def _holds(self, module: torch.nn.Module) -> bool:
        """True when every tensor of `module` is on this device and each 4-D one in this layout."""
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.device.type != self.device.type:
                return False
            if self.device.index is not None and tensor.device.index != self.device.index:
                return False
            if tensor.dim() == 4 and not tensor.is_contiguous(memory_format=self.memory_format):
                return False
        return True

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _cpu_has_fast_bf16() -> bool:
    """True where oneDNN runs bf16 convolutions natively (AVX-512 BF16 / AMX); elsewhere bf16 is emulated and slow."""
    try:
        caps = torch.backends.cpu.get_cpu_capability()
    except Exception:
        return False
    if caps not in ("AVX512",):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_runtime(device: str = "auto", precision: str = "auto") -> Runtime:
    """Pick the device (`auto`: CUDA when present) and precision (`auto`: bf16 where it is fast)."""
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise BrushworkError(f"unknown device {device!r}: expected auto, cpu, cuda or cuda:N")
    if precision not in PRECISIONS:
        raise BrushworkError(f"unknown precision {precision!r}: expected auto, fp32 or bf16")
    if device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise BrushworkError("device 'cuda' requested but no CUDA GPU is available (use --device cpu)")
    if precision == "auto":
        if dev.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        else:
            precision = "bf16" if _cpu_has_fast_bf16() else "fp32"
    return Runtime(device=dev, precision=precision)
