#!/usr/bin/env bash
# Build docent for an NVIDIA GPU (sm_90, H100/H200) on a machine without a CUDA install or a GPU,
# using the CUDA 13.0 toolkit that NVIDIA publishes on PyPI. The result runs on any machine with a
# CUDA 13 driver and the CUDA 13 runtime libraries (cuBLAS, cuBLASLt, cuRAND, NVRTC).
#
#   scripts/build-cuda.sh [--features FEATURES]     (default: flash-attn; add nccl for
#                                                    tensor parallelism over several GPUs)
#
# Environment: DOCENT_CUDA_HOME (toolkit venv, default ~/.cache/docent/cuda), CUDA_COMPUTE_CAP
# (default 90), CARGO_TARGET_DIR (default ~/.cache/docent/target-cuda), CUTLASS_DIR (a local CUTLASS
# clone for offline builds, holding the commits pinned below).
#
# With a system CUDA toolkit and internet access none of this is needed:
#   CUDA_COMPUTE_CAP=90 cargo build --release --features flash-attn
set -euo pipefail
cd "$(dirname "$0")/.."

features=flash-attn
if [[ "${1:-}" == "--features" ]]; then features="$2"; fi

cuda_home="${DOCENT_CUDA_HOME:-$HOME/.cache/docent/cuda}"
venv="$cuda_home/venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
# One consistent 13.0 release: a newer NVVM emits PTX that ptxas 13.0 refuses.
"$venv/bin/pip" install --quiet \
  nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
  nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 \
  nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
# Tensor parallelism links NCCL (cudarc binds its 2.30 API); the GPU machine loads its own
# libnccl.so.2 at run time (PyTorch's, for instance).
if [[ ",$features," == *",nccl,"* ]]; then
  "$venv/bin/pip" install --quiet nvidia-nccl-cu13==2.30.7
fi
toolkit="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')"

# The wheels ship versioned shared objects only; the linker wants the plain names.
for lib in "$toolkit"/lib/lib*.so.* "$toolkit"/../nccl/lib/lib*.so.*; do
  [[ -e "$lib" ]] || continue
  plain="${lib%%.so.*}.so"
  [[ -e "$plain" ]] || ln -s "$(basename "$lib")" "$plain"
done

# cudaforge (the kernel build helper) uses a CUTLASS checkout under $CUDAFORGE_HOME when it is at
# the pinned commit, and clones it from GitHub otherwise. mistralrs-quant and mistralrs-flash-attn
# pin 7127592…; candle-flash-attn-v3 (FlashAttention-3) pins 4c42f73f….
export CUDAFORGE_HOME="${CUDAFORGE_HOME:-$HOME/.cudaforge}"
for cutlass_commit in 7127592069c2fe01b041e174ba4345ef9b279671 4c42f73fdab5787e3bb57717f35a8cb1b3c0dc6d; do
  checkout="$CUDAFORGE_HOME/git/checkouts/cutlass-${cutlass_commit:0:16}"
  if [[ -n "${CUTLASS_DIR:-}" && ! -d "$checkout/include" ]]; then
    mkdir -p "$(dirname "$checkout")"
    git clone --quiet --no-checkout "$CUTLASS_DIR" "$checkout"
    git -C "$checkout" checkout --quiet "$cutlass_commit" -- include tools/util/include
    git -C "$checkout" update-ref --no-deref HEAD "$cutlass_commit"
  fi
done

# cudarc links the CUDA driver library (libcuda.so.1), which only a machine with an NVIDIA driver
# has. Elsewhere a stub with the same soname and the driver entry points cudarc declares stands in
# at link time (as the toolkit's lib/stubs/libcuda.so does); at run time the real driver loads.
library_path="$toolkit/lib"
if [[ -d "$toolkit/../nccl/lib" ]]; then library_path="$library_path:$(cd "$toolkit/../nccl/lib" && pwd)"; fi
if ! ldconfig -p 2>/dev/null | grep -q "libcuda.so.1 "; then
  cargo fetch --locked
  stubs="$cuda_home/stubs"
  mkdir -p "$stubs"
  grep -rhoE "\bfn cu[A-Z][A-Za-z0-9_]*" "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-*/src/driver/sys/ \
    | awk '{print "void " $2 "(void) {}"}' | sort -u > "$stubs/libcuda_stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/libcuda_stub.c"
  library_path="$library_path:$stubs"
fi

export PATH="$toolkit/bin:$PATH"
export CUDA_ROOT="$toolkit" CUDA_PATH="$toolkit" CUDA_HOME="$toolkit"
export LIBRARY_PATH="$library_path${LIBRARY_PATH:+:$LIBRARY_PATH}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/docent/target-cuda}"
# The flash-attention kernels take about 2.5 minutes each; keep them outside the target dir so a
# `cargo clean` does not throw away half an hour of compilation, and use every core for them.
export MISTRALRS_FLASH_ATTN_BUILD_DIR="${MISTRALRS_FLASH_ATTN_BUILD_DIR:-$cuda_home/flash-attn-092-sm$CUDA_COMPUTE_CAP}"
mkdir -p "$MISTRALRS_FLASH_ATTN_BUILD_DIR"
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
# With DOCENT_NVCC_QUEUE set, kernel objects are compiled elsewhere (scripts/nvcc-queue.sh,
# scripts/device-kernels.sh); every build script is then let start all of its kernels at once.
if [[ -n "${DOCENT_NVCC_QUEUE:-}" ]]; then
  mkdir -p "$DOCENT_NVCC_QUEUE"
  export DOCENT_REAL_NVCC="$toolkit/bin/nvcc" NVCC="$PWD/scripts/nvcc-queue.sh" CUDAFORGE_THREADS=256
fi

# CMake and libclang for llama.cpp (the CPU engine is in every build); PDF.js for the
# original-page view, embedded by the build (build.rs).
scripts/build-deps.sh
scripts/fetch-pdfjs.sh
cargo build --release --locked --features "$features"
echo "built $CARGO_TARGET_DIR/release/docent (features: $features, sm_$CUDA_COMPUTE_CAP)"
