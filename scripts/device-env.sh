# Sourced by the device scripts: on a GPU machine without Rust, put the CUDA 13 (and NCCL)
# libraries of its PyTorch install on LD_LIBRARY_PATH, unpack the CUDA build of docent
# (.docent/gpu/docent.xz, from scripts/build-cuda.sh + xz; or DOCENT_BIN) and the Qwen3 tokenizer,
# and write the random-weight Qwen3-4B checkpoint. Sets: python, bin, ckpt.
python="$(command -v python3)"
# The CUDA 13 runtime libraries (cuBLAS, cuBLASLt, cuRAND, NVRTC, cudart) of the PyTorch install.
libs="$("$python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))' 2>/dev/null || true)"
if [[ ! -e "$libs/libcublasLt.so.13" ]]; then
  libs="$(dirname "$(find / -name 'libcublasLt.so.13*' -not -path '/proc/*' 2>/dev/null | head -n 1)")"
fi
# NCCL (tensor parallelism) from the same install.
nccl="$("$python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "nccl", "lib"))' 2>/dev/null || true)"
if [[ -e "$nccl/libnccl.so.2" ]]; then libs="$libs:$nccl"; fi
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "python: $python; CUDA libraries: $libs"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
nvidia-smi topo -m || true
"$python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'

# DOCENT_BIN: a binary already unpacked (one too large to travel with a call goes in parts to /tmp).
bin="${DOCENT_BIN:-$PWD/.docent/gpu/docent}"
if [[ -z "${DOCENT_BIN:-}" ]]; then
  xz -dc .docent/gpu/docent.xz > "$bin"
  chmod +x "$bin"
fi
ldd "$bin" | grep -E "not found|cuda|cublas|nvrtc|curand|nccl" || true

tokenizer=models/qwen3-tokenizer
if [[ -e .docent/gpu/qwen3-tokenizer.tar.xz ]]; then
  tar -xJf .docent/gpu/qwen3-tokenizer.tar.xz -C .docent/gpu
  tokenizer=.docent/gpu/qwen3-tokenizer
fi
# Under /tmp, which outlives one call while the machine stays warm: the next call reuses it.
ckpt="${DOCENT_CKPT:-/tmp/docent-qwen3-4b-random}"
if [[ ! -e "$ckpt/.complete" ]]; then
  rm -rf "$ckpt"
  "$bin" checkpoint --shape qwen3-4b --out "$ckpt" --tokenizer "$tokenizer"
  touch "$ckpt/.complete"
fi
