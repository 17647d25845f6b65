"""The event roll plot is readable with 001's 25 classes and its score panels have a colour bar (issue 16 item 11)."""

from __future__ import annotations

import numpy as np
import pytest

from jasc_core.evaluation import plots

LABELS = [f"event class {k:02d}" for k in range(25)]


@pytest.fixture
def saved_figure(monkeypatch):
    """The figure a plot function hands to ``_save`` (then saved as usual)."""
    figures = []
    save = plots._save

    def keep(fig, path, plt, note=None):
        figures.append(fig)
        fig.canvas.draw()  # lay out before the checks read sizes
        return save(fig, path, plt, note)

    monkeypatch.setattr(plots, "_save", keep)
    return figures


@pytest.mark.parametrize("threshold", [0.5, np.linspace(0.3, 0.6, 25)])
def test_event_roll_names_are_readable_and_scores_have_a_colour_bar(tmp_path, saved_figure, threshold):
    rng = np.random.default_rng(0)
    scores = rng.random((2, 500, 25))
    targets = (scores > 0.8).astype(float)
    path = plots.event_roll_plot(["a", "b"], scores, targets, LABELS, 0.02, threshold, tmp_path / "roll.png")
    assert path.is_file() and path.stat().st_size > 0
    fig = saved_figure[0]
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 6
    names = [tick for tick in panels[0].get_yticklabels() if tick.get_text()]
    assert [tick.get_text() for tick in names] == LABELS
    assert min(tick.get_fontsize() for tick in names) >= 9
    row_pixels = panels[0].get_window_extent().height / len(LABELS)
    assert row_pixels >= 1.3 * 9 * fig.dpi / 72  # a class row is taller than its name with some spacing
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "event score (probability)"]
    assert len(bars) == 1
    assert any("score" in ax.get_title() for ax in panels)
    marked = [line for line in bars[0].lines]
    assert len(marked) == (1 if np.ndim(threshold) == 0 else 0)
