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
  # Only what is still missing: objects already unpacked are not compiled again.
  mkdir -p "$stage/cmds"
  for args in "$queue/cmds"/*.args; do
    key="$(basename "$args" .args)"
    [[ -s "$queue/objs/$key" ]] || cp "$args" "$queue/cmds/$key.cwd" "$stage/cmds/"
  done
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
  # DOCENT_KERNEL_DEADLINE_S: hand back what is done by then (a call has a time limit); pack again
  # here after unpacking and the next call compiles the rest.
  python3 -u - "$work" "$PWD" "$nvcc" "$cuda_home" "${DOCENT_KERNEL_JOBS:-$(nproc)}" \
    "${DOCENT_KERNEL_DEADLINE_S:-0}" <<'PY'
import concurrent.futures, os, shlex, subprocess, sys, threading, time
work, repo, nvcc, cuda_home, jobs, deadline = sys.argv[1:7]
deadline = time.time() + float(deadline) if float(deadline) > 0 else None
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
    if deadline and start > deadline:
        return key, None, 0.0, "past the deadline"
    # Its own process group: nvcc's children (cicc, ptxas) hold stderr open, so the deadline ends
    # the whole group, not nvcc alone (its children would keep the pipe open and the call running).
    p = subprocess.Popen([nvcc] + args, cwd=cwd, stderr=subprocess.PIPE, text=True,
                         stdout=subprocess.DEVNULL, start_new_session=True)
    kill = lambda: os.killpg(p.pid, 9)
    timer = threading.Timer(max(deadline - start, 0), kill) if deadline else None
    if timer:
        timer.start()
    err = p.communicate()[1]
    if timer:
        timer.cancel()
    if p.returncode and deadline and time.time() >= deadline:
        if os.path.exists(f"{work}/objs/{key}"):
            os.remove(f"{work}/objs/{key}")
        return key, None, time.time() - start, "past the deadline"
    return key, p.returncode, time.time() - start, err[-2000:]
# The flash-attention kernels take minutes each: start them first so none is left for the end alone.
keys = sorted((f[:-5] for f in os.listdir(f"{work}/cmds") if f.endswith(".args")),
              key=lambda k: (not k.startswith("flash_"), k))
start = time.time(); failed = 0; left = 0
with concurrent.futures.ThreadPoolExecutor(int(jobs)) as pool:
    for key, rc, secs, err in pool.map(one, keys):
        if rc is None:
            left += 1
            continue
        print(f"{key}: rc {rc}, {secs:.0f} s", flush=True)
        if rc:
            failed += 1; print(err, flush=True)
            os.remove(f"{work}/objs/{key}") if os.path.exists(f"{work}/objs/{key}") else None
print(f"{len(keys)} kernels, {failed} failed, {left} left for another call, "
      f"{time.time() - start:.0f} s wall", flush=True)
PY
  XZ_OPT="-T0" tar -cJf "$work/objs.tar.xz" -C "$work/objs" .
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
