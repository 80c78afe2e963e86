"""GPU utilization and memory of the device a run uses, read through NVML (pynvml).

Every reading is NVML's own number or None: None when the run is on CPU, no
NVIDIA driver is present, or NVML refuses the query. Nothing is estimated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuReading:
    """Mean NVML utilization over the readings taken in an epoch, and device memory in use at its end."""

    utilization_pct: float | None
    memory_bytes: int | None


class GpuMonitor:
    """Reads one CUDA device's NVML counters; a context manager that initializes and shuts down NVML.

    `take_utilization()` is called during an epoch (at progress reports and when
    training ends); `epoch_reading()` averages those readings — each NVML
    utilization value covers the driver's last sample period (1/6 s to 1 s) —
    and reads the memory used on the device.
    """

    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._nvml: Any = None
        self._handle: Any = None
        self._readings: list[float] = []

    def __enter__(self) -> GpuMonitor:
        if self._device.type == "cuda":
            self._open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # shutting down a library that is going away cannot fail the run
                log.debug("nvmlShutdown failed", exc_info=True)
        self._nvml = self._handle = None

    @property
    def available(self) -> bool:
        """True when NVML answers for the run's device."""
        return self._handle is not None

    def take_utilization(self) -> None:
        """Record NVML's current utilization of the device (no-op without NVML)."""
        if self._handle is None:
            return
        try:
            self._readings.append(float(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu))
        except Exception:  # pynvml.NVMLError and ctypes errors: a missing reading is None, not a crash
            log.debug("NVML utilization query failed", exc_info=True)

    def epoch_reading(self) -> GpuReading:
        """The epoch's mean utilization and current memory use; clears the readings for the next epoch."""
        readings, self._readings = self._readings, []
        utilization = sum(readings) / len(readings) if readings else None
        memory: int | None = None
        if self._handle is not None:
            try:
                memory = int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)
            except Exception:  # see take_utilization
                log.debug("NVML memory query failed", exc_info=True)
        return GpuReading(utilization, memory)

    def _open(self) -> None:
        try:
            import pynvml  # type: ignore[import-untyped]  # nvidia-ml-py ships no type hints

            pynvml.nvmlInit()
        except Exception:  # no driver, no libnvidia-ml.so: GPU fields stay None
            log.info("NVML unavailable; GPU utilization and memory will not be reported", exc_info=True)
            return
        self._nvml = pynvml
        try:
            self._handle = self._device_handle(pynvml)
        except Exception:
            log.info("NVML has no handle for %s", self._device, exc_info=True)

    def _device_handle(self, pynvml: Any) -> Any:
        # torch numbers devices after CUDA_VISIBLE_DEVICES, NVML does not; the UUID names the same board.
        index = self._device.index if self._device.index is not None else torch.cuda.current_device()
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        if uuid is not None:
            text = str(uuid)
            known_prefix = text.startswith(("GPU-", "MIG-"))
            return pynvml.nvmlDeviceGetHandleByUUID(text if known_prefix else f"GPU-{text}")
        return pynvml.nvmlDeviceGetHandleByIndex(index)
