"""The plans package() makes are the ones recorded in tests/data/plan_hashes.json (tests/plan_hashes.py): a
refactor of the packager must leave every plan byte-identical (manifest steps, init, memory, WebGL programs,
prepacked weights, refusals in the same words). A change meant to change plans records them again with
`python -m tests.plan_hashes --write` and says why in its commit."""

from __future__ import annotations

import json

import pytest

from tests.plan_hashes import RECORD, cases, compute

RECORDED = json.loads(RECORD.read_text())


def test_every_case_is_recorded():
    assert sorted(RECORDED) == sorted(cases())


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_plan_is_unchanged(name):
    assert compute(name) == RECORDED[name], (
        f"the plan of {name} changed; if that is meant, record it: python -m tests.plan_hashes --write {name}"
    )
