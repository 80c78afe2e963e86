"""GPU readings come from NVML for the device torch uses, and are None whenever NVML cannot answer."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch

from modelyard_trainer.training.gpu import GpuMonitor


class FakeNvml:
    """Stands in for the pynvml module: answers like the NVML calls GpuMonitor makes."""

    def __init__(self, utilization: list[int], fail_init: bool = False) -> None:
        self.utilization = list(utilization)
        self.fail_init = fail_init
        self.asked_uuid: str | None = None
        self.shut_down = False

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        if self.fail_init:
            raise OSError("libnvidia-ml.so.1: cannot open shared object file")

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shut_down = True

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:  # noqa: N802
        self.asked_uuid = uuid
        return "handle"

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(gpu=self.utilization.pop(0))

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(used=3 * 2**30)


@pytest.fixture
def cuda_device(monkeypatch: pytest.MonkeyPatch) -> torch.device:
    properties = SimpleNamespace(uuid="6a3f0c1e-0000-4000-8000-000000000001")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: properties)
    return torch.device("cuda", 0)


def test_epoch_reading_averages_nvml_utilization_of_the_board_torch_uses(
    monkeypatch: pytest.MonkeyPatch, cuda_device: torch.device
) -> None:
    nvml = FakeNvml(utilization=[40, 60, 90])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)

    with GpuMonitor(cuda_device) as gpu:
        gpu.take_utilization()
        gpu.take_utilization()
        first = gpu.epoch_reading()
        gpu.take_utilization()
        second = gpu.epoch_reading()

    assert (
        nvml.asked_uuid == "GPU-6a3f0c1e-0000-4000-8000-000000000001"
    )  # by UUID: immune to CUDA_VISIBLE_DEVICES
    assert (first.utilization_pct, first.memory_bytes) == (50.0, 3 * 2**30)
    assert second.utilization_pct == 90.0
    assert nvml.shut_down


def test_no_nvidia_driver_means_no_reading(
    monkeypatch: pytest.MonkeyPatch, cuda_device: torch.device
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(utilization=[], fail_init=True))

    with GpuMonitor(cuda_device) as gpu:
        gpu.take_utilization()
        reading = gpu.epoch_reading()

    assert not gpu.available
    assert (reading.utilization_pct, reading.memory_bytes) == (None, None)
