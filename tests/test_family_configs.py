"""Every family's typed config (`focoos/models/<family>/config.py`) against Focoos 0.25 and our registry.

Focoos' field names and defaults are recorded below as facts (read from Focoos 0.25's
`focoos/models/<family>/config.py` and `focoos/nn/backbone/*.py`), not imported: Focoos is not a dependency.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from focoos.errors import ModelConfigError, UnsupportedFamilyError
from focoos.model_manager import ConfigManager
from focoos.nn.backbone.base import BackboneConfig
from focoos.nn.backbone.csp_darknet import CSPConfig
from focoos.nn.backbone.resnet import ResnetConfig
from focoos.nn.backbone.stdc import STDCConfig
from focoos.nn.config import ModelConfig

REGISTRY = Path(__file__).resolve().parents[1] / "focoos" / "registry"
REGISTRY_NAMES = sorted(p.stem for p in REGISTRY.glob("*.json"))
REQUIRED = object()  # a field without a default
IMAGENET = {"pixel_mean": [123.675, 116.28, 103.53], "pixel_std": [58.395, 57.12, 57.375]}

# family -> (module, class name)
CONFIG_CLASSES = {
    "fai_detr": ("focoos.models.fai_detr.config", "DETRConfig"),
    "fai_mf": ("focoos.models.fai_mf.config", "MaskFormerConfig"),
    "bisenetformer": ("focoos.models.bisenetformer.config", "BisenetFormerConfig"),
    "fai_cls": ("focoos.models.fai_cls.config", "ClassificationConfig"),
    "rtmo": ("focoos.models.rtmo.config", "RTMOConfig"),
}

# Focoos 0.25's fields, in its order, with its defaults.
MASK_HEAD = {
    "transformer_predictor_out_dim": 256, "transformer_predictor_hidden_dim": 256,
    "transformer_predictor_dec_layers": 6, "transformer_predictor_dim_feedforward": 1024, "head_out_dim": 256,
    "cls_sigmoid": False,
}
MASK_LOSS = {
    "criterion_deep_supervision": True, "criterion_eos_coef": 0.1, "criterion_num_points": 12544,
    "weight_dict_loss_dice": 5, "weight_dict_loss_mask": 5, "weight_dict_loss_ce": 2,
    "matcher_cost_class": 2, "matcher_cost_mask": 5, "matcher_cost_dice": 5,
}
FOCOOS_FIELDS: dict[str, dict[str, Any]] = {
    "fai_detr": {
        "num_classes": REQUIRED, "backbone_config": REQUIRED, "num_queries": 300, "resolution": None, **IMAGENET,
        "size_divisibility": 0, "pixel_decoder_out_dim": 256, "pixel_decoder_feat_dim": 256,
        "pixel_decoder_num_encoder_layers": 1, "pixel_decoder_expansion": 1.0, "pixel_decoder_dim_feedforward": 1024,
        "transformer_predictor_out_dim": 256, "transformer_predictor_hidden_dim": 256,
        "transformer_predictor_dec_layers": 6, "transformer_predictor_dim_feedforward": 1024, "head_out_dim": 256,
        "pixel_decoder_dropout": 0.0, "pixel_decoder_nhead": 8, "transformer_predictor_nhead": 8, "threshold": 0.5,
        "top_k": 300, "criterion_deep_supervision": True, "criterion_eos_coef": 0.1,
        "criterion_losses": ["vfl", "boxes"], "criterion_num_points": 0, "criterion_focal_alpha": 0.75,
        "criterion_focal_gamma": 2.0, "weight_dict_loss_vfl": 1, "weight_dict_loss_bbox": 5,
        "weight_dict_loss_giou": 2, "matcher_cost_class": 2, "matcher_cost_bbox": 5, "matcher_cost_giou": 2,
        "matcher_use_focal_loss": True, "matcher_alpha": 0.25, "matcher_gamma": 2.0,
    },
    "fai_mf": {
        "num_classes": REQUIRED, "backbone_config": REQUIRED, "num_queries": 100, "resolution": 640, **IMAGENET,
        "size_divisibility": 0, "pixel_decoder_out_dim": 256, "pixel_decoder_feat_dim": 256,
        "pixel_decoder_transformer_layers": 0, "pixel_decoder_transformer_dropout": 0.0,
        "pixel_decoder_transformer_nheads": 8, "pixel_decoder_transformer_dim_feedforward": 1024, **MASK_HEAD,
        "postprocessing_type": "semantic", "mask_threshold": 0.5, "predict_all_pixels": False,
        "use_mask_score": False, "threshold": 0.5, "top_k": 100, **MASK_LOSS,
    },
    "bisenetformer": {
        "num_classes": REQUIRED, "backbone_config": REQUIRED, "num_queries": 100, **IMAGENET,
        "size_divisibility": 0, "pixel_decoder_out_dim": 256, "pixel_decoder_feat_dim": 256, **MASK_HEAD,
        "postprocessing_type": "semantic", "top_k": 300, "mask_threshold": 0.5, "predict_all_pixels": False,
        "use_mask_score": False, "threshold": 0.5, **MASK_LOSS,
    },
    "fai_cls": {
        "num_classes": REQUIRED, "backbone_config": REQUIRED, "resolution": 224, **IMAGENET, "hidden_dim": 512,
        "dropout_rate": 0.2, "features": "res5", "num_layers": 1, "dense_prediction": False,
        "use_focal_loss": False, "focal_alpha": 0.75, "focal_gamma": 2.0, "label_smoothing": 0.0,
        "pos_weight": 10.0,
    },
    "rtmo": {
        "num_classes": REQUIRED,
        "backbone_config": {"use_pretrained": True, "backbone_url": None, "model_type": "csp_darknet",
                            "size": "small"},
        "transformer_embed_dims": 256, "transformer_num_heads": 8, "transformer_feedforward_channels": 1024,
        "transformer_dropout": 0.0, "transformer_encoder_layers": 1, "csp_layers": 1, "hidden_dim": 256,
        "output_dim": 256, "pe_temperature": 10000, "widen_factor": 0.5, "spe_learnable": False,
        "output_indices": [1, 2], "num_keypoints": 17, "in_channels": 256, "pose_vec_channels": 256,
        "cls_feat_channels": 256, "stacked_convs": 2, "featmap_strides": [16, 8],
        "featmap_strides_pointgenerator": [16, 8], "centralize_points_pointgenerator": False,
        "overlaps_power": 0.5, "pixel_mean": [0.0, 0.0, 0.0], "pixel_std": [1.0, 1.0, 1.0],
        "feat_channels_dcc": 128, "num_bins": [192, 256], "spe_channels": 128, "gau_s": 128,
        "gau_expansion_factor": 2, "gau_dropout_rate": 0.0, "nms_topk": 1000, "nms_thr": 0.65, "score_thr": 0.1,
        "skeleton": [], "keypoints": [],
    },
}
# Fields of ours beyond Focoos', with their defaults: serving options our registry JSONs carry.
OUR_FIELDS: dict[str, dict[str, Any]] = {"fai_detr": {"nms_iou": None}, "fai_cls": {"top_k": None}}

BACKBONE_BASE = {"use_pretrained": False, "backbone_url": None, "model_type": ""}
FOCOOS_BACKBONES: dict[type[BackboneConfig], dict[str, Any]] = {
    STDCConfig: {"use_pretrained": False, "backbone_url": None, "model_type": "stdc", "in_chans": 3, "base": 64,
                 "layers": [4, 5, 3], "out_features": ["res2", "res3", "res4", "res5"], "block_num": 4,
                 "block_type": "cat", "size": None, "use_conv_last": False},
    ResnetConfig: {"use_pretrained": False, "backbone_url": None, "model_type": "resnet", "in_chans": 3,
                   "depth": 50, "variant": "d", "freeze_at": -1, "num_stages": 4, "freeze_norm": True, "act": "relu",
                   "pretrained": False},
    CSPConfig: {"use_pretrained": False, "backbone_url": None, "model_type": "csp_darknet", "size": "small"},
}


def config_class(family: str) -> type[ModelConfig]:
    module, name = CONFIG_CLASSES[family]
    return getattr(importlib.import_module(module), name)


def registry(name: str) -> tuple[str, dict[str, Any]]:
    data = json.loads((REGISTRY / f"{name}.json").read_text())
    return data["model_family"], data["config"]


def assert_contains(big: Any, small: Any, path: str = "config") -> None:
    """Every key of `small` is in `big` with an equal value (nested dicts compared the same way)."""
    if isinstance(small, dict):
        assert isinstance(big, dict), path
        for key, value in small.items():
            assert key in big, f"{path}.{key} lost"
            assert_contains(big[key], value, f"{path}.{key}")
    else:
        assert big == small, f"{path}: {big!r} != {small!r}"


# -- the registry
@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_registry_config_parses_and_round_trips(name: str) -> None:
    family, data = registry(name)
    cfg = ConfigManager.from_dict(family, data)
    assert type(cfg) is config_class(family)
    assert isinstance(cfg.backbone_config, BackboneConfig)
    assert cfg.backbone_config.model_type == data["backbone_config"]["model_type"]
    as_json = cfg.to_dict()
    assert list(as_json) == list(cfg.field_names())
    assert_contains(as_json, data)  # nothing the JSON says is lost or changed
    assert json.loads(json.dumps(as_json)) == as_json  # plain JSON
    again = config_class(family).from_dict(as_json)
    assert again == cfg and again.to_dict() == as_json


@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_registry_config_refuses_what_does_not_fit(name: str) -> None:
    family, data = registry(name)
    cls = config_class(family)

    with pytest.raises(ModelConfigError, match=rf"{cls.__name__}: unknown field\(s\) 'num_clases' \(did you mean "
                                               r"'num_classes'\?\)") as bad_key:
        cls.from_dict({**data, "num_clases": 3})
    assert bad_key.value.field == "num_clases"

    with pytest.raises(ModelConfigError, match=rf"{cls.__name__}\.num_classes: expected int, got '3' \(str\)") as bad:
        cls.from_dict({**data, "num_classes": "3"})
    assert bad.value.field == "num_classes"
    with pytest.raises(ModelConfigError, match=r"pixel_mean\[1\]: expected float") as bad_item:
        cls.from_dict({**data, "pixel_mean": [1.0, None, 3.0]})
    assert bad_item.value.field == "pixel_mean[1]"
    with pytest.raises(ModelConfigError, match="expected bool") as bad_bool:
        cls.from_dict({**data, "backbone_config": {**data["backbone_config"], "use_pretrained": 1}})
    assert bad_bool.value.field == "backbone_config.use_pretrained"
    with pytest.raises(ModelConfigError, match="'swin' is not supported") as bad_backbone:
        cls.from_dict({**data, "backbone_config": {**data["backbone_config"], "model_type": "swin"}})
    assert bad_backbone.value.field == "backbone_config.model_type"
    with pytest.raises(ModelConfigError, match="backbone_config: unknown field") as bad_nested:
        cls.from_dict({**data, "backbone_config": {**data["backbone_config"], "dept": 50}})
    assert bad_nested.value.field == "backbone_config.dept"

    without_classes = {k: v for k, v in data.items() if k != "num_classes"}
    with pytest.raises(ModelConfigError, match=rf"{cls.__name__}: missing required field\(s\) 'num_classes'") as gone:
        cls.from_dict(without_classes)
    assert gone.value.field == "num_classes"
    without_backbone = {k: v for k, v in data.items() if k != "backbone_config"}
    if FOCOOS_FIELDS[family]["backbone_config"] is REQUIRED:
        with pytest.raises(ModelConfigError, match="missing required field") as no_backbone:
            cls.from_dict(without_backbone)
        assert no_backbone.value.field == "backbone_config"
    else:  # RTMO: Focoos' default backbone
        assert cls.from_dict(without_backbone).backbone_config == CSPConfig(size="small", use_pretrained=True)
    assert isinstance(gone.value, ValueError)  # ModelConfigError is a FocoosError and a ValueError


# -- Focoos' schema
@pytest.mark.parametrize("family", sorted(CONFIG_CLASSES))
def test_fields_and_defaults_equal_focoos(family: str) -> None:
    cls = config_class(family)
    focoos, ours = FOCOOS_FIELDS[family], OUR_FIELDS.get(family, {})
    assert list(cls.field_names()) == [*focoos, *ours]  # Focoos' order: the order of its JSON form
    defaults = cls.defaults()
    for name, value in {**focoos, **ours}.items():
        if value is REQUIRED:
            assert name not in defaults, name
        else:
            assert defaults[name] == value, name
    assert issubclass(cls, ModelConfig)


@pytest.mark.parametrize("backbone", list(FOCOOS_BACKBONES), ids=lambda c: c.__name__)
def test_backbone_fields_and_defaults_equal_focoos(backbone: type[BackboneConfig]) -> None:
    assert BackboneConfig.defaults() == BACKBONE_BASE
    assert backbone.defaults() == FOCOOS_BACKBONES[backbone]
    assert list(backbone.field_names()) == list(FOCOOS_BACKBONES[backbone])
    model_type = FOCOOS_BACKBONES[backbone]["model_type"]
    assert type(BackboneConfig.from_dict({"model_type": model_type})) is backbone
    with pytest.raises(ModelConfigError, match="model_type"):
        backbone.from_dict({"model_type": "other"})


def test_config_modules_import_without_torch() -> None:
    modules = [module for module, _ in CONFIG_CLASSES.values()] + ["focoos.nn.backbone.stdc",
                                                                   "focoos.nn.backbone.resnet",
                                                                   "focoos.nn.backbone.csp_darknet"]
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "    assert 'torch' not in sys.modules, name + ' imported torch'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- the typed object
def test_config_reads_as_focoos_dict_and_checks_assignments() -> None:
    family, data = registry("fai-detr-n-digits")
    cfg = config_class(family).from_dict(data)
    assert cfg["num_queries"] == cfg.num_queries == 100 and cfg.get("top_k") == 100 and "nms_iou" in cfg
    assert list(dict(cfg)) == list(cfg.field_names()) and len(cfg) == len(cfg.field_names())
    cfg["top_k"] = 10
    cfg.update(threshold=0.25, num_queries=50)
    assert (cfg.top_k, cfg.threshold, cfg.num_queries) == (10, 0.25, 50)
    with pytest.raises(ModelConfigError, match="unknown field"):
        cfg["colour"] = 1
    with pytest.raises(ModelConfigError, match="expected int"):
        cfg.update(top_k=1, num_queries=2.5)
    assert cfg.top_k == 10  # nothing set when one value does not fit
    with pytest.raises(ModelConfigError, match="expected float"):
        config_class(family)(num_classes=2, backbone_config=STDCConfig(), threshold="high")  # checked when built
    assert config_class(family).parse(cfg, 3).num_classes == 3 and cfg.num_classes == 10  # the argument wins


def test_config_manager_from_dict() -> None:
    family, data = registry("rtmo-m-coco")
    cfg = ConfigManager.from_dict(family, data, num_keypoints=4, keypoints=list("abcd"))
    assert (cfg.num_keypoints, cfg.keypoints, cfg.num_bins) == (4, list("abcd"), (192, 256))
    assert cfg.skeleton[0] == (16, 14)  # pairs as tuples, written back as lists
    with pytest.raises(ModelConfigError, match="unknown field"):
        ConfigManager.from_dict(family, data, colour=1)
    with pytest.raises(UnsupportedFamilyError, match="depth"):
        ConfigManager.from_dict("depth", data)


def test_shared_defaults_agree_with_the_configs() -> None:
    """Values the serving and training code keep beside the configs are the configs' own."""
    pytest.importorskip("torch")
    from focoos.models.layers import MASKFORMER_DEFAULTS
    from focoos.processing.postprocess import KEYPOINT_NMS_THR, KEYPOINT_SCORE_THR

    for family in ("fai_mf", "bisenetformer"):
        defaults = config_class(family).defaults()
        assert {k: defaults[k] for k in MASKFORMER_DEFAULTS} == MASKFORMER_DEFAULTS
    rtmo = config_class("rtmo").defaults()
    assert (rtmo["nms_thr"], rtmo["score_thr"]) == (KEYPOINT_NMS_THR, KEYPOINT_SCORE_THR)
    for family in CONFIG_CLASSES:
        modelling = importlib.import_module(f"focoos.models.{family}.modelling")
        assert config_class(family).defaults() == modelling.DEFAULTS


# -- the builders
SMALLEST = {"fai_detr": "fai-detr-n-digits", "fai_mf": "fai-mf-n-digits-ins",
            "bisenetformer": "bisenetformer-n-digits-sem", "fai_cls": "fai-cls-n-digits", "rtmo": "rtmo-s-coco"}


@pytest.mark.parametrize("family", sorted(SMALLEST))
def test_build_model_takes_the_typed_config_or_its_dict(family: str) -> None:
    torch = pytest.importorskip("torch")
    modelling = importlib.import_module(f"focoos.models.{family}.modelling")
    _, data = registry(SMALLEST[family])
    with pytest.raises(ModelConfigError, match="colour"):
        modelling.build_model({**data, "colour": 1}, data["num_classes"])
    torch.manual_seed(0)
    from_dict = modelling.build_model(data, data["num_classes"]).state_dict()
    torch.manual_seed(0)
    typed = modelling.build_model(config_class(family).from_dict(data), data["num_classes"]).state_dict()
    assert list(typed) == list(from_dict)
    assert all(torch.equal(typed[k], from_dict[k]) for k in typed)
