#!/bin/sh
# Build one served model into a Triton model repository, then validate the repository; configured by env.
#
#   FOCOOS_MODEL           registry name (focoos models) or a local model folder   [fai-detr-m-coco]
#   FOCOOS_RUNTIME         onnx_trt16 | onnx_trt32 | onnx_cuda32 | onnx_cpu | torchscript_32   [onnx_trt16]
#   FOCOOS_TARGET          gpu | cpu | embedded                                     [gpu]
#   FOCOOS_NAME            served (ensemble) name                                   [basename of FOCOOS_MODEL]
#   FOCOOS_REPOSITORY      repository folder                                        [/models]
#   FOCOOS_MAX_BATCH_SIZE  largest batch the dynamic batcher forms                  [8]
#   FOCOOS_REBUILD         if-missing: skip when FOCOOS_NAME is already in the repository;
#                          always: add a new version (a polling server loads it, then retires the old one)  [if-missing]
#   FOCOOS_ALLOW_RANDOM_WEIGHTS  1: build even when the weights cannot be fetched (random, marked untrained)   [unset]
set -eu

model="${FOCOOS_MODEL:-fai-detr-m-coco}"
runtime="${FOCOOS_RUNTIME:-onnx_trt16}"
target="${FOCOOS_TARGET:-gpu}"
repository="${FOCOOS_REPOSITORY:-/models}"
max_batch_size="${FOCOOS_MAX_BATCH_SIZE:-8}"
rebuild="${FOCOOS_REBUILD:-if-missing}"
name="${FOCOOS_NAME:-$(basename "${model%/}")}"

case "$rebuild" in
    if-missing|always) ;;
    *) echo "FOCOOS_REBUILD must be if-missing or always, got '$rebuild'" >&2; exit 2 ;;
esac

set --
if [ "${FOCOOS_ALLOW_RANDOM_WEIGHTS:-0}" = "1" ]; then set -- --allow-random-weights; fi

if [ "$rebuild" = "if-missing" ] && [ -f "$repository/$name/config.pbtxt" ]; then
    echo "$name is already in $repository (FOCOOS_REBUILD=if-missing): not rebuilding"
else
    focoos build --model "$model" --runtime "$runtime" --target "$target" --name "$name" \
        --repository "$repository" --max-batch-size "$max_batch_size" "$@"
fi
exec focoos build --check --repository "$repository"
