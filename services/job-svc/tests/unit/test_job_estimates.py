"""Estimates from past runs: per kind of device, scaled to the dataset when its size is known, priced
when a price is configured, and none without a past run."""

from __future__ import annotations

import pytest

from modelyard_job.domain.estimates import PastRun, device_kind, estimate_job


def _run(
    device: str, train_samples: int, epoch_s: float, outside_s: float = 10.0, speed: float = 100.0
) -> PastRun:
    return PastRun(device, train_samples, epoch_s, speed, outside_s)


def test_without_past_runs_there_is_no_estimate() -> None:
    assert estimate_job([], epochs=3, train_samples=1000, prices={"cpu": 1.0}) == []


def test_the_epoch_time_scales_with_the_dataset_and_the_time_outside_epochs_is_added() -> None:
    (cpu,) = estimate_job([_run("cpu", 1000, epoch_s=20.0, outside_s=5.0)], 3, 2000, {})
    assert (cpu.device, cpu.runs, cpu.scaled_to_dataset) == ("cpu", 1, True)
    assert cpu.epoch_s == pytest.approx(40.0)  # twice the samples
    assert cpu.duration_s == pytest.approx(5.0 + 3 * 40.0)
    assert (cpu.cost, cpu.price_per_device_hour) == (None, None)


def test_an_unknown_dataset_size_takes_past_epochs_as_they_were() -> None:
    (cpu,) = estimate_job([_run("cpu", 1000, epoch_s=20.0, outside_s=0.0)], 2, None, {})
    assert (cpu.epoch_s, cpu.duration_s, cpu.scaled_to_dataset) == (20.0, 40.0, False)


def test_each_kind_of_device_gets_its_own_estimate_priced_per_device_hour_fastest_first() -> None:
    runs = [
        _run("cpu", 1000, 60.0),
        _run("cuda:0", 1000, 6.0),
        _run("cuda:1", 1000, 8.0),
        _run("cpu", 1000, 40.0),
    ]
    cuda, cpu = estimate_job(runs, 10, 1000, {"cuda": 3.6, "cpu": 0.36})
    assert (cuda.device, cuda.runs, cuda.epoch_s) == ("cuda", 2, 7.0)  # the median of 6 and 8
    assert cuda.cost == pytest.approx((10.0 + 10 * 7.0) / 3600 * 3.6)
    assert (cpu.device, cpu.runs, cpu.epoch_s) == ("cpu", 2, 50.0)
    assert cpu.cost == pytest.approx((10.0 + 10 * 50.0) / 3600 * 0.36)


def test_runs_without_samples_or_epochs_do_not_count() -> None:
    assert estimate_job([_run("cpu", 0, 20.0), _run("cpu", 100, 0.0)], 1, 100, {}) == []


@pytest.mark.parametrize(("device", "kind"), [("cpu", "cpu"), ("cuda", "cuda"), ("cuda:3", "cuda")])
def test_a_device_string_names_its_kind(device: str, kind: str) -> None:
    assert device_kind(device) == kind
