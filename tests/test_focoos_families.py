"""What every family owes Focoos 0.25, one row per registry model (timm's way: one module parametrized over
the models): Focoos' state-dict layout and parameter count, a strict load of the synthetic checkpoint, the
network's output names, and Focoos' criterion buffer where the family has one. Each family's own checks
(probes, export, training outputs) stay in tests/test_focoos_<family>.py."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tests import family_checks as checks  # noqa: E402
from tests import focoos_reference as ref  # noqa: E402

MANIFESTS = ref.supported(ref.MANIFEST_NAMES)
OUTPUT_NAMES = {
    "fai_detr": ("boxes", "logits"),
    "fai_mf": ("masks", "logits"),
    "bisenetformer": ("masks", "logits"),
    "fai_cls": ("logits",),
    "rtmo": ("boxes", "scores", "keypoints"),
}
EMPTY_WEIGHT_FAMILIES = {"fai_detr", "fai_mf", "bisenetformer"}  # a no-object class in Focoos' criterion


def test_every_family_has_manifests() -> None:
    assert {ref.model_info(name).model_family.value for name in MANIFESTS} == set(OUTPUT_NAMES)


@pytest.mark.parametrize("name", MANIFESTS)
def test_state_dict_layout_and_strict_load(name: str) -> None:
    network = checks.assert_focoos_layout(name)
    family = ref.model_info(name).model_family.value
    assert network.output_names == OUTPUT_NAMES[family]
    if family in EMPTY_WEIGHT_FAMILIES:
        checks.assert_focoos_empty_weight(network, name)
