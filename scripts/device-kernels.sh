#!/usr/bin/env bash
# On a GPU machine with nvcc and many cores (no Rust needed): compile the kernel objects that a
# CUDA build of docent queued through scripts/nvcc-queue.sh, and hand them back.
#
#   here:  scripts/device-kernels.sh pack QUEUE_DIR TARBALL      (commands + CUTLASS headers)
#   there: scripts/device-kernels.sh build TARBALL OUT_DIR       (objects as OUT_DIR/objs.tar.xz.*)
#   here:  scripts/device-kernels.sh unpack QUEUE_DIR PARTS...   (the waiting build goes on)
#
# Each command is the build script's own nvcc command line with this checkout, the CUTLASS
# checkouts and the CUDA toolkit mapped to their places there. The object files are what a local
# nvcc 13.0 would make; the build links them as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="$1"; shift
case "$mode" in
pack)
  queue="$1"; tarball="$2"
  stage="$(mktemp -d)"
  cp -r "$queue/cmds" "$stage/cmds"
  forge="${CUDAFORGE_HOME:-$HOME/.cudaforge}/git/checkouts"
  mkdir -p "$stage/cutlass"
  for c in "$forge"/cutlass-*/; do
    name="$(basename "$c")"
    mkdir -p "$stage/cutlass/$name/tools/util"
    cp -r "$c/include" "$stage/cutlass/$name/"
    cp -r "$c/tools/util/include" "$stage/cutlass/$name/tools/util/"
  done
  toolkit="$(dirname "$(dirname "$(readlink -f "${DOCENT_REAL_NVCC:?the real nvcc}")")")"
  printf 'LOCAL_REPO=%q\nLOCAL_FORGE=%q\nLOCAL_TOOLKIT=%q\n' "$PWD" "$forge" "$toolkit" > "$stage/paths.env"
  tar -cJf "$tarball" -C "$stage" .
  rm -rf "$stage"
  echo "packed $(ls "$queue/cmds" | grep -c '\.args$') commands into $tarball ($(du -h "$tarball" | cut -f1))"
  ;;
build)
  tarball="$1"; out="$2"
  work=/tmp/docent-kernels
  rm -rf "$work"; mkdir -p "$work/objs"
  tar -xJf "$tarball" -C "$work"
  nvcc="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
  cuda_home="$(dirname "$(dirname "$(readlink -f "$nvcc")")")"
  echo "nvcc: $nvcc ($("$nvcc" --version | tail -1)); $(nproc) cores"
  python3 - "$work" "$PWD" "$nvcc" "$cuda_home" "${DOCENT_KERNEL_JOBS:-$(nproc)}" <<'PY'
import concurrent.futures, os, shlex, subprocess, sys, time
work, repo, nvcc, cuda_home, jobs = sys.argv[1:6]
env = dict(l.strip().split("=", 1) for l in open(f"{work}/paths.env") if "=" in l)
env = {k: shlex.split(v)[0] for k, v in env.items()}
def remap(a):
    return (a.replace(env["LOCAL_FORGE"], f"{work}/cutlass").replace(env["LOCAL_TOOLKIT"], cuda_home)
             .replace(env["LOCAL_REPO"], repo))
def one(key):
    args = open(f"{work}/cmds/{key}.args", "rb").read().decode().split("\0")[:-1]
    cwd = remap(open(f"{work}/cmds/{key}.cwd").read())
    args = [remap(a) for a in args]
    i = args.index("-o"); args[i + 1] = f"{work}/objs/{key}"
    start = time.time()
    r = subprocess.run([nvcc] + args, cwd=cwd, capture_output=True, text=True)
    return key, r.returncode, time.time() - start, r.stderr[-2000:]
keys = sorted(f[:-5] for f in os.listdir(f"{work}/cmds") if f.endswith(".args"))
start = time.time(); failed = 0
with concurrent.futures.ThreadPoolExecutor(int(jobs)) as pool:
    for key, rc, secs, err in pool.map(one, keys):
        print(f"{key}: rc {rc}, {secs:.0f} s", flush=True)
        if rc:
            failed += 1; print(err, flush=True)
print(f"{len(keys)} kernels, {failed} failed, {time.time() - start:.0f} s wall", flush=True)
PY
  tar -cJf "$work/objs.tar.xz" -C "$work/objs" .
  split -b 15M -d "$work/objs.tar.xz" "$out/objs.tar.xz."
  ls -la "$out"
  ;;
unpack)
  queue="$1"; shift
  mkdir -p "$queue/incoming"
  cat "$@" | tar -xJf - -C "$queue/incoming"
  # Whole files only: a waiting stand-in copies an object as soon as its name appears.
  for f in "$queue/incoming"/*.o; do mv "$f" "$queue/objs/"; done
  echo "unpacked $(ls "$queue/objs" | wc -l) objects"
  ;;
*)
  echo "usage: $0 pack|build|unpack ..." >&2; exit 2
  ;;
esac
