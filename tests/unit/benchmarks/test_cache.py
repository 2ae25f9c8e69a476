"""The accuracy benchmark's cache: a run killed while writing leaves the old file readable."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import _common
from _common import save_npz


def test_a_write_that_dies_half_way_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "cache" / "har.npz"
    save_npz(file, key=np.array("old"), AAA=np.ones(3))

    def dies_half_way(target: Path, **arrays: np.ndarray) -> None:
        Path(target).write_bytes(b"PK\x03\x04 half a zip")  # what a kill mid-write leaves
        raise KeyboardInterrupt

    monkeypatch.setattr(_common.np, "savez", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_npz(file, key=np.array("new"), AAA=np.zeros(3))
    monkeypatch.undo()
    with np.load(file) as stored:
        assert str(stored["key"]) == "old"
        np.testing.assert_array_equal(stored["AAA"], np.ones(3))
    save_npz(file, key=np.array("new"), AAA=np.zeros(3))  # the next run writes over the debris
    with np.load(file) as stored:
        assert str(stored["key"]) == "new"
