#!/usr/bin/env bash
# On a GPU device machine (bare, offline, x86-64, as root), in the repository root, with .device/ carried there from
# scripts/gpu/device-pack.sh: set up the providers, run `gpu-check` and the GPU bench on each, and write the results
# under $OUT. Finishes within $DEVICE_BUDGET_S seconds (default 470: under 8 minutes, so one rerun fits a session).
#
#   bash scripts/gpu/device-check.sh                  # WebGPU (Vulkan), and CUDA when its parts were staged
#   bash scripts/gpu/device-check.sh --stage-cuda N   # a separate call per part: keep .device-cuda/part-N for later
#
# Environment: DEVICE_PROVIDERS (default "webgpu", plus "cuda" once staged or given), CUDA_PROVIDER_FROM (a 1.30.0
# provider source already on the machine, for `npm run cuda-provider -- --from`), BENCH_ARGS (default none: the 1.5B
# shape; "--shape 7b" or "--quick"), DEVICE_BUDGET_S. Files written to $OUT (at most 8 come back):
#   device-check.log, machine.txt, gpu-check-<provider>.json, bench-<provider>.json, cuda-provider.json
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-/tmp/cliffscope-device-out}
STAGE=/tmp/cliffscope-cuda-parts
mkdir -p "$OUT"

if [ "${1:-}" = --stage-cuda ]; then
  n=${2:?--stage-cuda needs the part number}
  mkdir -p "$STAGE"
  cp ".device-cuda/part-$n/"* "$STAGE/" && mv "$STAGE/cuda-route.tar.xz.part" "$STAGE/part-$n"
  echo "staged part $n; $STAGE now holds: $(ls "$STAGE" | tr '\n' ' ')"
  exit 0
fi

exec > >(tee -a "$OUT/device-check.log") 2>&1
T0=$(date +%s)
BUDGET=${DEVICE_BUDGET_S:-470}
elapsed() { echo $(($(date +%s) - T0)); }
left() { echo $((BUDGET - $(elapsed))); }
step() { echo "== [$(elapsed) s] $*"; }

step "machine"
{
  uname -a
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  echo "libcuda: $(ldconfig -p | grep -m1 'libcuda.so.1 ' || echo none in the loader cache)"
  echo "vulkan ICDs: $(ls /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null | tr '\n' ' ')"
  echo "python3: $(command -v python3) $(python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)' 2>&1 | tail -1)"
} | tee "$OUT/machine.txt"

step "node and node_modules from .device"
[ -f .device/node.tar.xz ] || { echo "no .device/: run scripts/gpu/device-pack.sh here and carry .device"; exit 2; }
mkdir -p /tmp/cliffscope-node && tar -xJf .device/node.tar.xz -C /tmp/cliffscope-node
export PATH=/tmp/cliffscope-node:$PATH
rm -rf node_modules && tar -xJf .device/node_modules.tar.xz
node --version

step "Vulkan loader for WebGPU"
if command -v nvidia-smi >/dev/null; then
  for f in .device/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
else
  echo "no nvidia-smi: not a GPU machine, the Vulkan loader is left uninstalled"
fi
ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$ICD" ] && export VK_DRIVER_FILES=$ICD
STORIES=()
[ -f .device/stories260K-hf/config.json ] && STORIES=(--stories .device/stories260K-hf)

PROVIDERS=${DEVICE_PROVIDERS:-webgpu}
PARTS=$(ls "$STAGE"/part-* 2>/dev/null | wc -l)
if [ -z "${DEVICE_PROVIDERS:-}" ] && { [ "$PARTS" -gt 0 ] || [ -n "${CUDA_PROVIDER_FROM:-}" ]; }; then PROVIDERS="webgpu cuda"; fi

cuda_setup() {
  # The staged npm route: onnxruntime-node 1.29.0 and the asus4 1.29.0 provider (device-pack.sh --cuda-npm).
  local want
  want=$(cat "$STAGE/sha256" 2>/dev/null)
  local got
  got=$(cat $(ls "$STAGE"/part-* | sort) | sha256sum | cut -d' ' -f1)
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    echo "CUDA parts incomplete or corrupt (have: $(ls "$STAGE" | tr '\n' ' ')); stage every part with --stage-cuda N"
    return 1
  fi
  rm -rf /tmp/cliffscope-cuda && mkdir -p /tmp/cliffscope-cuda
  cat $(ls "$STAGE"/part-* | sort) | xz -d | tar -x -C /tmp/cliffscope-cuda
  rm -rf node_modules/onnxruntime-node node_modules/onnxruntime-common
  cp -r /tmp/cliffscope-cuda/onnxruntime-node /tmp/cliffscope-cuda/onnxruntime-common node_modules/
  node bin/run-ts.js scripts/install-cuda-provider.ts --from /tmp/cliffscope-cuda/provider --json >"$OUT/cuda-provider.json"
  local rc=$?
  cat "$OUT/cuda-provider.json"
  return $rc
}

run_provider() {
  local p=$1
  step "$p: gpu-check ($(left) s left)"
  timeout $(($(left) > 150 ? 150 : $(left))) node bin/run-ts.js scripts/gpu/check.ts --provider "$p" "${STORIES[@]}" \
    --cache /tmp/cliffscope-cache --out "$OUT/gpu-check-$p.json" >/dev/null
  echo "gpu-check $p exit $?"
  step "$p: bench ${BENCH_ARGS:-(1.5B)} ($(left) s left)"
  # shellcheck disable=SC2086
  timeout $(($(left) - 10)) node bin/run-ts.js bench/run.ts --provider "$p" ${BENCH_ARGS:-} --cache /tmp/cliffscope-bench \
    --out "$OUT/bench-$p.json" >/dev/null
  echo "bench $p exit $?"
}

for p in $PROVIDERS; do
  if [ "$(left)" -lt 60 ]; then
    step "$p skipped: $(left) s left of $BUDGET"
    continue
  fi
  if [ "$p" = cuda ] && [ -n "${CUDA_PROVIDER_FROM:-}" ]; then
    step "CUDA provider from $CUDA_PROVIDER_FROM"
    node bin/run-ts.js scripts/install-cuda-provider.ts --from "$CUDA_PROVIDER_FROM" --json >"$OUT/cuda-provider.json"
    cat "$OUT/cuda-provider.json"
  elif [ "$p" = cuda ] && [ "$PARTS" -gt 0 ]; then
    step "CUDA provider from the staged parts"
    cuda_setup || { echo "CUDA route not set up"; continue; }
  fi
  run_provider "$p"
done

step "summary"
node -e '
const fs = require("fs"), path = require("path");
for (const f of fs.readdirSync(process.argv[1]).filter((f) => f.endsWith(".json")).sort()) {
  let r; try { r = JSON.parse(fs.readFileSync(path.join(process.argv[1], f), "utf8")); } catch { console.log(f, "unreadable"); continue; }
  if (r.checks) console.log(f, "provider", r.provider, r.pass ? "PASS" : "FAIL", r.checks.filter((c) => !c.pass).map((c) => c.model + " " + c.name).join(", "));
  if (r.targets) console.log(f, "provider", r.machine.providerUsed, r.machine.gpu, r.targets.map((t) => t.name + "=" + (t.measured === null ? "n/a" : t.measured.toFixed(3)) + (t.pass ? "" : "!")).join(" "));
}' "$OUT"
step "done"
