"""The time left in training: up front from the first timed steps when the run is long, after every epoch."""

from __future__ import annotations

import pytest

from jasc_core.training.progress import LONG_RUN_SECONDS, TIMED_STEPS, RunClock, duration_text


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def run_steps(clock: RunClock, fake: FakeTime, seconds_per_step: float, steps: int, per_epoch: int, epochs: int):
    lines = []
    for _ in range(steps):
        fake.t += seconds_per_step
        lines.append(clock.step_done(per_epoch, epochs))
    return lines


def test_a_long_run_is_announced_once_from_the_timed_steps():
    fake = FakeTime()
    clock = RunClock(now=fake)
    fake.t = 100.0  # the first step's one-off cost is not timed
    lines = run_steps(clock, fake, 4.0, 20, per_epoch=16, epochs=300)
    said = [line for line in lines if line]
    assert len(said) == 1 and lines.index(said[0]) == TIMED_STEPS
    # 4 s per step x 16 steps = 64 s per epoch; x 300 epochs = 19,200 s.
    assert "4.00 s per training step" in said[0] and "about 1 min 4 s" in said[0]
    assert "300 epochs left about 5 h 20 min" in said[0]


def test_a_short_run_is_not_announced():
    fake = FakeTime()
    clock = RunClock(now=fake)
    per_step = LONG_RUN_SECONDS / (8 * 100) * 0.9
    assert not any(run_steps(clock, fake, per_step, 20, per_epoch=8, epochs=100))


def test_time_left_after_each_epoch_is_the_mean_epoch_times_the_epochs_left():
    clock = RunClock()
    assert "2 epochs left: about 20 s" in clock.epoch_done(10.0, 2)
    assert "1 epochs left: about 15 s" in clock.epoch_done(20.0, 1)
    assert clock.epoch_done(12.0, 0) == ""


@pytest.mark.parametrize(("seconds", "text"), [(4.4, "4 s"), (61, "1 min 1 s"), (3600 * 34 + 60 * 5, "34 h 05 min")])
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text
