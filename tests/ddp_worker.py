"""``python -m ddp_worker ARGS`` (with tests/ on the path): ``jasc ARGS`` with the ``engine_fakes`` components registered.

torchrun starts it as each worker of a distributed test run; ``--nproc N`` in ARGS launches N such workers (the
launcher of ``jasc run --nproc``, pointed at this module instead of ``jasc_core.cli``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import engine_fakes

from jasc_core.contract.registry import Registry, reset_registry


def _test_hooks() -> None:
    """``JASC_TEST_PID_DIR``: each worker writes its pid to DIR/RANK; ``JASC_TEST_STEP_DELAY``: seconds of sleep
    before each step (time to kill a rank mid-epoch); ``JASC_TEST_STATE_DIR``: each worker saves its model's and
    extra models' (EMA teacher) state dicts after training to DIR/RANK.pt; ``JASC_TEST_STEP_LOG``: the main process
    appends the global index of each optimiser step it finishes to FILE; ``JASC_TEST_DISTILL_LOG``: at each epoch end
    every worker appends "RANK EPOCHS_DONE CLIPS_COMPUTED" (its distiller's count of teachers' outputs it computed)
    to FILE."""
    folder = os.environ.get("JASC_TEST_PID_DIR")
    if folder and "RANK" in os.environ:
        Path(folder, os.environ["RANK"]).write_text(str(os.getpid()))
    delay = float(os.environ.get("JASC_TEST_STEP_DELAY", "0"))
    if delay:
        from jasc_core.training import Trainer

        step = Trainer.train_step

        def slow_step(self, step_input, epoch):  # noqa: ANN001, ANN202 - a test's patch
            time.sleep(delay)
            return step(self, step_input, epoch)

        Trainer.train_step = slow_step
    steps = os.environ.get("JASC_TEST_STEP_LOG")
    if steps and os.environ.get("RANK", "0") == "0":
        from jasc_core.training import Trainer

        timed = Trainer.train_step

        def logged_step(self, step_input, epoch):  # noqa: ANN001, ANN202 - a test's patch
            losses = timed(self, step_input, epoch)
            with open(steps, "a") as handle:
                handle.write(f"{self.step - 1}\n")
            return losses

        Trainer.train_step = logged_step
    computed = os.environ.get("JASC_TEST_DISTILL_LOG")
    if computed:
        from jasc_core.training.distill import Distiller

        save = Distiller.save

        def logged_save(self):  # noqa: ANN001, ANN202 - a test's patch
            self._test_epochs = getattr(self, "_test_epochs", 0) + 1
            with open(computed, "a") as handle:
                handle.write(f"{os.environ['RANK']} {self._test_epochs} {self.computed}\n")
            save(self)

        Distiller.save = logged_save
    states = os.environ.get("JASC_TEST_STATE_DIR")
    if states:
        import torch

        from jasc_core.training import Trainer

        fit = Trainer.fit

        def fit_and_save(self, hook, resume):  # noqa: ANN001, ANN202 - a test's patch
            fit(self, hook, resume)
            extra = {name: model.state_dict() for name, model in self.schedule.extra_models().items()}
            torch.save({"model": self.pipeline.state_dict(), "extra": extra},
                       Path(states, f"{os.environ['RANK']}.pt"))

        Trainer.fit = fit_and_save


def main(argv: list[str]) -> None:
    _test_hooks()
    registry = Registry()
    registry.load_entry_points()
    registry.add_plugin(engine_fakes, "engine_fakes")
    reset_registry(registry)
    if "--nproc" in argv:
        from jasc_core.cli import report_error
        from jasc_core.errors import JascError
        from jasc_core.training.launch import launch_run

        at = argv.index("--nproc")
        nproc, rest = int(argv[at + 1]), argv[:at] + argv[at + 2:]
        out = Path(rest[rest.index("--out") + 1]) if "--out" in rest else None
        resume = Path(rest[rest.index("--resume") + 1]) if "--resume" in rest else None
        recipe = Path(rest[1]) if len(rest) > 1 and not rest[1].startswith("-") else None
        try:
            launch_run(nproc, recipe, [], out, resume, False, module="ddp_worker")
        except JascError as exc:
            report_error(exc)
            sys.exit(exc.exit_code)
        return
    from jasc_core.cli import main as jasc_main

    jasc_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
