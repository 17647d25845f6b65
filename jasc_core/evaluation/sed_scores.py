"""sed_scores_eval 0.0.4, importable and working with current setuptools and pandas.

Two problems in the pinned release, both fixed here without touching site-packages:

* ``sed_scores_eval`` imports ``sed_eval`` -> ``dcase_util`` -> ``pkg_resources`` at import time, and setuptools >= 81
  no longer ships ``pkg_resources``. pyproject.toml pins ``setuptools<81``; where a newer setuptools is installed
  anyway, ``import_sed_scores_eval`` installs a minimal stand-in module (only consulted by dcase_util's installation
  checks and example-file helpers, which jasc never calls).
* its Cython kernel ``onset_offset_curves`` takes typed memoryviews of the score columns, and with pandas >= 3 (copy
  on write) ``DataFrame.to_numpy()`` returns read-only arrays: "buffer source array is read-only". The wrapper passes
  writable copies. Collar-based, intersection-based (PSDS) and segment-based scoring all go through it.

And one check: ``sebbs`` (the optional SEBB extra) requires ``sed_scores_eval_np2``, a fork that installs the same
``sed_scores_eval`` package and, installed after 0.0.4, overwrites its files with code that computes some metrics
differently (its segment-based ROC asserts where 0.0.4 returns a value). Where the fork is installed,
``import_sed_scores_eval`` checks that the files on disk are 0.0.4's (their hashes in its install record) and
otherwise stops with the command that restores them.

Use ``import_sed_scores_eval()`` (never ``import sed_scores_eval`` directly) so the shims are in place.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import sys
import types
import warnings
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from jasc_core.errors import ConfigError

_patched = False
#: A file that differs between sed_scores_eval 0.0.4 and sed_scores_eval_np2 0.0.4.
_SENTINEL = "sed_scores_eval/base_modules/curves.py"
RESTORE = "pip install --force-reinstall --no-deps sed_scores_eval==0.0.4"


def files_replaced_by_fork() -> bool:
    """True when sed_scores_eval_np2 is installed and the sed_scores_eval files on disk are not 0.0.4's."""
    from importlib import metadata

    try:
        metadata.distribution("sed_scores_eval_np2")
        record = [f for f in metadata.distribution("sed_scores_eval").files or () if str(f) == _SENTINEL]
    except metadata.PackageNotFoundError:
        return False
    if not record or record[0].hash is None:
        return False
    path = record[0].locate()
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
    return digest != record[0].hash.value


def _install_pkg_resources_stand_in() -> None:
    try:
        with warnings.catch_warnings():
            # setuptools 80 warns on import that pkg_resources is deprecated; dcase_util is the one using it.
            warnings.simplefilter("ignore")
            import pkg_resources  # noqa: F401
        return
    except ImportError:
        pass
    from importlib import metadata

    module = types.ModuleType("pkg_resources")
    module.__doc__ = "jasc stand-in for the removed setuptools pkg_resources (dcase_util import only)."

    class DistributionNotFound(Exception):
        pass

    class VersionConflict(Exception):
        pass

    def get_distribution(name: str) -> types.SimpleNamespace:
        try:
            return types.SimpleNamespace(project_name=name, key=name.lower(), version=metadata.version(name))
        except metadata.PackageNotFoundError as exc:
            raise DistributionNotFound(name) from exc

    def _unsupported(*args: object, **kwargs: object) -> NoReturn:
        raise NotImplementedError("pkg_resources is not installed (setuptools >= 81); install setuptools<81")

    module.DistributionNotFound = DistributionNotFound  # type: ignore[attr-defined]
    module.VersionConflict = VersionConflict  # type: ignore[attr-defined]
    module.get_distribution = get_distribution  # type: ignore[attr-defined]
    module.require = _unsupported  # type: ignore[attr-defined]
    module.parse_requirements = _unsupported  # type: ignore[attr-defined]
    module.resource_filename = _unsupported  # type: ignore[attr-defined]
    module.WorkingSet = _unsupported  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = module


def _writable(array: npt.ArrayLike | None) -> npt.NDArray[np.float64] | None:
    if array is None:
        return None
    return np.array(array, dtype=np.float64, copy=True)


def import_sed_scores_eval() -> types.ModuleType:
    """``sed_scores_eval`` with the pkg_resources stand-in and the read-only-array fix applied (idempotent)."""
    global _patched
    if not _patched and files_replaced_by_fork():
        raise ConfigError("the installed sed_scores_eval files are sed_scores_eval_np2's (installed with sebbs), "
                          f"not 0.0.4's, whose metrics jasc reports; restore them: {RESTORE}")
    _install_pkg_resources_stand_in()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*pkg_resources.*")
        sse = importlib.import_module("sed_scores_eval")
    if not _patched:
        statistics = importlib.import_module("sed_scores_eval.base_modules.statistics")
        kernel = statistics.onset_offset_curves

        def onset_offset_curves(scores: npt.ArrayLike, timestamps: npt.ArrayLike,
                                change_point_candidates: npt.ArrayLike | None = None,
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            # The kernel (cy_detection.pyx) returns change points, onset times and offset times.
            return kernel(_writable(scores), _writable(timestamps), _writable(change_point_candidates))

        onset_offset_curves.__wrapped__ = kernel  # type: ignore[attr-defined]
        statistics.onset_offset_curves = onset_offset_curves
        _patched = True
    return sse
