#!/usr/bin/env bash
# An nvcc stand-in for the CUDA build (`NVCC=scripts/nvcc-queue.sh`, set by scripts/build-cuda.sh
# when DOCENT_NVCC_QUEUE names a directory): each kernel object the build scripts ask for is written
# down as a command in $DOCENT_NVCC_QUEUE/cmds, and the stand-in waits for the object to appear in
# $DOCENT_NVCC_QUEUE/objs, compiled elsewhere from those commands (scripts/device-kernels.sh runs
# them on a GPU machine's cores; nvcc on 2 cores takes over an hour for them). After
# DOCENT_NVCC_WAIT_S seconds (default 3600) without it, or for anything but `-c ... -o X.o`, the
# real nvcc runs here, one at a time, so a build without the queue's help still completes.
set -euo pipefail
real="${DOCENT_REAL_NVCC:-nvcc}"
queue="${DOCENT_NVCC_QUEUE:?DOCENT_NVCC_QUEUE names the queue directory}"
out=""; src=""; prev=""; compile=0
for a in "$@"; do
  [[ "$prev" == "-o" ]] && out="$a"
  [[ "$a" == "-c" ]] && compile=1
  [[ "$a" == *.cu ]] && src="$a"
  prev="$a"
done
if [[ $compile -eq 0 || -z "$out" || -z "$src" || "$out" != *.o ]]; then
  exec "$real" "$@"
fi
# cudaforge names an object after its source's stem and a hash of the source's path: unique.
key="$(basename "$out")"
mkdir -p "$queue/cmds" "$queue/objs"
printf '%s' "$PWD" > "$queue/cmds/$key.cwd"
printf '%s\0' "$@" > "$queue/cmds/$key.args.tmp"
mv "$queue/cmds/$key.args.tmp" "$queue/cmds/$key.args"
deadline=$((SECONDS + ${DOCENT_NVCC_WAIT_S:-3600}))
while [[ ! -s "$queue/objs/$key" ]]; do
  if (( SECONDS > deadline )); then
    exec flock "$queue/.local-nvcc" "$real" "$@"
  fi
  sleep 3
done
cp "$queue/objs/$key" "$out"
