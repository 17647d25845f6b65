"""Frame scores as sed_scores_eval's score DataFrames (what its metrics and the ``sebbs`` package read).

A DataFrame has columns ``onset``, ``offset`` and one per class, one row per frame; frame ``t`` spans
``[t * hop, (t + 1) * hop)``. Built with pandas alone, so inference can make them without importing sed_scores_eval
(``sed_scores_eval.base_modules.scores.create_score_dataframe`` builds the same frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def frame_timestamps(n_frames: int, hop_seconds: float, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows to keep and their ``n + 1`` boundary times: the frames inside ``[0, duration]``.

    The last frames of a padded batch may run past the clip's end; sed_scores_eval wants scores inside the audio, so
    boundaries are cut at the duration (at least one frame is kept) and frames left with no length are dropped.
    """
    timestamps = np.arange(n_frames + 1, dtype=float) * hop_seconds
    timestamps = np.minimum(timestamps, max(duration, timestamps[1] if n_frames else 0.0))
    keep = np.flatnonzero(np.diff(timestamps) > 0)
    bounds = np.concatenate([timestamps[keep], [timestamps[keep[-1] + 1]]]) if len(keep) else timestamps[:1]
    return keep, bounds


def score_frame(scores: np.ndarray, labels: Sequence[str], hop_seconds: float, duration: float) -> Any:
    """One clip's frame scores ``[T, classes]`` as a score DataFrame cut to ``duration`` seconds."""
    import pandas as pd

    scores = np.asarray(scores, dtype=float)
    keep, bounds = frame_timestamps(len(scores), hop_seconds, duration)
    values = np.concatenate([bounds[:-1, None], bounds[1:, None], scores[keep]], axis=1)
    return pd.DataFrame(values, columns=["onset", "offset", *labels])
