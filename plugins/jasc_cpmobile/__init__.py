"""jasc_cpmobile: the low-complexity models of 003 and the DCASE baselines.

Encoders ``cpmobile`` (CP-Mobile, 003 Fig. 1; DCASE 2024 Task 1 baseline by default) and ``desed_cnn`` (the DCASE
2023 Task 4 baseline CNN; 003's plain CNN with other widths). Heads ``cpmobile_classifier`` (scene), ``attention``
(scene, 003 Fig. 4) and ``rnn`` (event, 003 Fig. 4; DESED's weak output optional). docs/complexity.md lists the
configurations of 003 Table 2 and the counts they give.
"""

from __future__ import annotations

from jasc_core import hookimpl
from jasc_cpmobile.convnet import DesedCNN
from jasc_cpmobile.cpmobile import CPMobile, CPMobileClassifier
from jasc_cpmobile.heads import AttentionSceneHead, RNNEventHead

__all__ = ["AttentionSceneHead", "CPMobile", "CPMobileClassifier", "DesedCNN", "RNNEventHead"]


@hookimpl
def jasc_register_components(register) -> None:
    register(CPMobile)
    register(CPMobileClassifier)
    register(DesedCNN)
    register(AttentionSceneHead)
    register(RNNEventHead)
