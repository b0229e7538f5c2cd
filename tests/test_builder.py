"""RepositoryBuilder without a server: configs Triton's schema accepts, layout, versions, validation."""

from __future__ import annotations

import pytest
from focoos.builder import RepositoryBuilder, RepositoryError
from focoos.builder.configs import TENSORRT_BACKEND_KEYS, TENSORRT_PARAMETER_KEYS, parse_pbtxt

from focoos import RuntimeType
from focoos.infer.runtimes import TENSORRT_WORKSPACE_BYTES, tensorrt_options

STEPS = ("", "_preprocess", "_model", "_postprocess")


def _config(root, name):
    return parse_pbtxt((root / name / "config.pbtxt").read_text())


def test_tensorrt_fp16_repository(small_detr, tmp_path):
    repo = RepositoryBuilder(tmp_path)
    served = repo.add(small_detr, runtime_type=RuntimeType.ONNX_TRT16, max_batch_size=8)
    assert served.name == "tiny-detr" and served.versions == [1] and served.target == "gpu"
    for suffix in STEPS:
        assert (tmp_path / f"tiny-detr{suffix}" / "1").is_dir()
    network = _config(tmp_path, "tiny-detr_model")
    assert network.backend == "onnxruntime" and network.default_model_filename == "model.onnx"
    assert network.instance_group[0].kind == network.instance_group[0].KIND_GPU
    assert list(network.dynamic_batching.preferred_batch_size) == [1, 2, 4, 8]
    assert network.model_warmup[0].inputs["images"].zero_data  # random FP32 bits hold NaN, which the step refuses
    (trt,) = network.optimization.execution_accelerators.gpu_execution_accelerator
    assert trt.name == "tensorrt" and set(trt.parameters) <= TENSORRT_PARAMETER_KEYS
    assert trt.parameters["precision_mode"] == "FP16"
    assert trt.parameters["trt_profile_min_shapes"] == "images:1x3x160x160"
    assert trt.parameters["trt_profile_max_shapes"] == "images:8x3x160x160"
    assert trt.parameters["trt_engine_cache_path"] == "/engine_cache/tiny-detr"


def test_tensorrt_parameters_are_the_local_runtime_options_under_the_backend_names(small_detr, tmp_path):
    RepositoryBuilder(tmp_path).add(small_detr, runtime_type=RuntimeType.ONNX_TRT32, name="t", max_batch_size=4)
    (trt,) = _config(tmp_path, "t_model").optimization.execution_accelerators.gpu_execution_accelerator
    local = tensorrt_options(False, "/engine_cache/t", "images", (160, 160), 4)
    assert set(trt.parameters) == {TENSORRT_BACKEND_KEYS.get(k, k) for k in local}
    assert trt.parameters["precision_mode"] == "FP32" and trt.parameters["trt_engine_cache_enable"] == "true"
    assert trt.parameters["max_workspace_size_bytes"] == str(TENSORRT_WORKSPACE_BYTES) == str(2 << 30)
    for key in ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes"):
        assert trt.parameters[key] == local[key]
    assert local["trt_profile_opt_shapes"] == "images:1x3x160x160"


def test_options_are_keyword_only(small_cls, tmp_path):
    with pytest.raises(TypeError):
        RepositoryBuilder(tmp_path).add(small_cls, RuntimeType.ONNX_CPU)  # type: ignore[misc]


def test_torchscript_uses_libtorch_names_and_the_ensemble_maps_them(small_detr, tmp_path):
    RepositoryBuilder(tmp_path).add(small_detr, runtime_type=RuntimeType.TORCHSCRIPT_32, name="ts")
    network = _config(tmp_path, "ts_model")
    assert network.backend == "pytorch" and (tmp_path / "ts_model" / "1" / "model.pt").is_file()
    assert [i.name for i in network.input] == ["INPUT__0"]
    assert [o.name for o in network.output] == ["OUTPUT__0", "OUTPUT__1"]
    step = _config(tmp_path, "ts").ensemble_scheduling.step[1]
    assert dict(step.output_map) == {"OUTPUT__0": "raw_boxes", "OUTPUT__1": "raw_logits"}


def test_embedded_target_runs_the_network_in_the_python_backend(small_detr, tmp_path):
    RepositoryBuilder(tmp_path).add(small_detr, runtime_type=RuntimeType.ONNX_CPU, name="emb", target="embedded")
    network = _config(tmp_path, "emb_model")
    assert network.backend == "python" and network.parameters["model_file"].string_value == "model.onnx"
    for step in ("emb_preprocess", "emb_postprocess"):
        folder = tmp_path / step / "1"
        assert (folder / "model.py").is_file() and (folder / "focoos" / "processing" / "transport.py").is_file()


def test_ensemble_carries_what_a_client_needs(small_detr, tmp_path):
    RepositoryBuilder(tmp_path).add(small_detr, runtime_type=RuntimeType.ONNX_CPU, name="d", top_k=10)
    ensemble = _config(tmp_path, "d")
    params = {k: v.string_value for k, v in ensemble.parameters.items()}
    assert params["task"] == "detection" and params["classes"] == '["red", "green", "blue"]'
    assert params["im_size"] == "[160, 160]" and params["top_k"] == "10"
    assert [o.name for o in ensemble.output] == ["NUM_DETECTIONS", "BOXES", "SCORES", "CLASSES"]
    assert list(ensemble.output[1].dims) == [10, 4]
    assert [i.optional for i in ensemble.input] == [False, True]


def test_classification_outputs_have_no_boxes(small_cls, tmp_path):
    RepositoryBuilder(tmp_path).add(small_cls, runtime_type=RuntimeType.ONNX_CPU, name="c", target="embedded")
    assert [o.name for o in _config(tmp_path, "c").output] == ["NUM_DETECTIONS", "SCORES", "CLASSES"]


def test_adding_a_name_again_adds_a_version_and_list_remove(small_cls, tmp_path):
    repo = RepositoryBuilder(tmp_path)
    repo.add(small_cls, runtime_type=RuntimeType.ONNX_CPU, name="c", target="embedded")
    served = repo.add(small_cls, runtime_type=RuntimeType.ONNX_CPU, name="c", target="embedded")
    assert served.versions == [1, 2]
    assert (tmp_path / "c_model" / "1" / "model.onnx").is_file() and (tmp_path / "c_model" / "2").is_dir()
    assert [m.name for m in repo.list()] == ["c"] and repo.validate() == []
    repo.remove("c")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RepositoryError, match="no model 'c'"):
        repo.remove("c")


def test_validate_reports_broken_configs_and_missing_files(small_cls, tmp_path):
    repo = RepositoryBuilder(tmp_path)
    repo.add(small_cls, runtime_type=RuntimeType.ONNX_CPU, name="c")
    (tmp_path / "c_model" / "1" / "model.onnx").unlink()
    (tmp_path / "c_postprocess" / "config.pbtxt").write_text("this is { not a config")
    problems = repo.validate()
    assert any("model.onnx is missing" in p for p in problems)
    assert any("c_postprocess/config.pbtxt: does not parse" in p for p in problems)
    assert any("step 'c_postprocess' is not in the repository" in p for p in problems)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "moon"}, "target"),
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"top_k": 0}, "top_k"),
        ({"runtime_type": RuntimeType.ONNX_COREML}, "CoreML"),
    ],
)
def test_bad_arguments_write_nothing(small_cls, tmp_path, kwargs, message):
    with pytest.raises(RepositoryError, match=message):
        RepositoryBuilder(tmp_path).add(small_cls, **{"runtime_type": RuntimeType.ONNX_CPU, **kwargs})
    assert not any(tmp_path.iterdir())


def test_failed_build_leaves_no_staging_and_no_ensemble(small_cls, tmp_path):
    (tmp_path / "c_model").write_text("a file where the network step's folder belongs")
    with pytest.raises(RepositoryError, match="building c"):
        RepositoryBuilder(tmp_path).add(small_cls, runtime_type=RuntimeType.ONNX_CPU, name="c")
    assert not (tmp_path / "c").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".build-")]


def test_engine_prebuild_needs_tensorrt_and_says_so(small_cls, tmp_path):
    from focoos.builder.tensorrt import prebuild_engine_cache

    from focoos import RuntimeUnavailableError

    repo = RepositoryBuilder(tmp_path / "repo")
    repo.add(small_cls, runtime_type=RuntimeType.ONNX_TRT16, name="c")
    with pytest.raises(RuntimeUnavailableError, match="TensorrtExecutionProvider"):
        prebuild_engine_cache(repo.root, "c", tmp_path / "cache")
    repo.add(small_cls, runtime_type=RuntimeType.ONNX_CPU, name="cpu")
    with pytest.raises(RuntimeUnavailableError, match="no TensorRT accelerator"):
        prebuild_engine_cache(repo.root, "cpu", tmp_path / "cache")


def test_runtime_defaults_to_the_targets_and_a_gpu_runtime_on_the_cpu_is_refused(small_cls, tmp_path):
    repo = RepositoryBuilder(tmp_path)
    assert repo.add(small_cls, name="e", target="embedded").runtime_type == "onnx_cpu"
    assert _config(tmp_path, "e_model").parameters["runtime_type"].string_value == "onnx_cpu"
    assert repo.add(small_cls, name="g").runtime_type == "onnx_trt16"
    for target, runtime in (("cpu", RuntimeType.ONNX_TRT16), ("cpu", RuntimeType.ONNX_CUDA32)):
        with pytest.raises(RepositoryError, match=f"target {target} runs the network.*not {runtime.value}"):
            repo.add(small_cls, name="bad", target=target, runtime_type=runtime)
    assert not (tmp_path / "bad").exists()


def test_rebuilding_for_another_target_replaces_the_versions_the_new_configs_cannot_serve(small_cls, tmp_path):
    repo = RepositoryBuilder(tmp_path)
    repo.add(small_cls, name="c", target="embedded")
    assert repo.add(small_cls, name="c", target="embedded").versions == [1, 2]  # same backend: kept for a roll-back
    served = repo.add(small_cls, name="c", target="gpu")
    assert served.versions == [3] and (served.target, served.runtime_type) == ("gpu", "onnx_trt16")
    assert sorted(p.name for p in (tmp_path / "c_model").iterdir()) == ["3", "config.pbtxt"]
    assert repo.validate() == []
    assert repo.add(small_cls, name="c", target="embedded").versions == [4] and repo.validate() == []


def test_validate_names_a_version_built_for_another_backend(small_cls, tmp_path):
    import shutil

    repo = RepositoryBuilder(tmp_path / "gpu")
    repo.add(small_cls, name="c", target="gpu")
    mixed = RepositoryBuilder(tmp_path / "mixed")
    mixed.add(small_cls, name="c", target="embedded")
    for step in ("c", "c_preprocess", "c_model", "c_postprocess"):  # a version 2 from a gpu build
        shutil.copytree(repo.root / step / "1", mixed.root / step / "2")
    problems = mixed.validate()
    assert problems == ["c_model/2: built for another backend, model file or tensors than c_model/config.pbtxt "
                        "describes (a server cannot load it): build the name again"]
