"""The rich consoles every command prints people-facing output with (tables, summaries), in one place.

Rich lays tables out for the terminal's width and falls back to 80 columns when the output is not a terminal (a
pipe, a file, CI), so ``jasc list-plugins | less`` got descriptions folded one word per line and metric headers cut
to "Segment-...". Off a terminal these consoles lay out as wide as the content needs (up to ``PIPE_WIDTH``) instead;
``COLUMNS`` still wins when it is set. The choice is made at each print, so a console created at import time follows
wherever the output goes later.
"""

from __future__ import annotations

from rich.console import Console, ConsoleDimensions

#: Layout width when the output is not a terminal. Tables take only the width they need, so this is a ceiling for
#: very wide tables, not padding.
PIPE_WIDTH = 1000


class OutputConsole(Console):
    """A ``rich.console.Console`` that is not squeezed to 80 columns when its output is not a terminal."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal:  # _width: set from width= or COLUMNS at creation
            return ConsoleDimensions(PIPE_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def on_broken_pipe(self) -> None:
        """The reader closed the pipe (``jasc ... | head``): stop printing and let the caller decide the exit code.

        Rich's default exits with code 1 on the spot; ``jasc_core.cli.main`` treats a closed pipe as a normal end.
        """
        self.quiet = True
        raise BrokenPipeError(32, "the reader of the output closed the pipe")


def output_console(*, stderr: bool = False, **kwargs: object) -> Console:
    """The console for a command's output (``stderr=True`` for messages and errors); keyword arguments as rich's."""
    return OutputConsole(stderr=stderr, **kwargs)
