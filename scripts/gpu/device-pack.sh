#!/usr/bin/env bash
# Prepare .device/ here, on a machine with the npm registry and Debian's packages, for scripts/gpu/device-check.sh on
# a GPU device machine that reaches neither (see README, "GPU (CUDA) on Linux" → "Checking a GPU").
#
#   bash scripts/gpu/device-pack.sh              # .device/: Node, production node_modules, stories260K, Vulkan loader
#   bash scripts/gpu/device-pack.sh --cuda-npm   # also .device-cuda/part-N/: the CUDA route from the npm registry
#
# .device/ stays under the 64 MiB a device call may carry (this script checks). It holds:
#   node.tar.xz           this machine's Node binary (the device image has none; same ABI as the addons below)
#   node_modules.tar.xz   the production dependencies, Linux x64 binaries only
#   stories260K-hf/       the real tiny Llama, from ../shared (which does not travel)
#   gl/*.deb              the Vulkan loader, which WebGPU (Dawn) needs and the device image lacks
#
# --cuda-npm: the only CUDA provider on the npm registry is ONNX Runtime 1.29.0's (com.github.asus4.onnxruntime.
# linux-x64-gpu, CUDA 13), so the CUDA route there runs onnxruntime-node 1.29.0 (providers must match the core
# exactly). Both are packed, xz-compressed and split into parts under 60 MiB, one device call each
# (device-check.sh --stage-cuda N), because together they are about 160 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LIMIT=$((64 * 1024 * 1024))
CUDA_NPM=0
for a in "$@"; do
  case "$a" in
    --cuda-npm) CUDA_NPM=1 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done
[ "$(uname -m)" = x86_64 ] || { echo "the device machine is x86-64: pack on an x86-64 machine" >&2; exit 2; }
[ -d node_modules/onnxruntime-node ] || { echo "run npm install first" >&2; exit 2; }

OUTDIR=.device
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR/gl"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "node $(node --version)"
cp "$(command -v node)" "$TMP/node"
tar -cJf "$OUTDIR/node.tar.xz" -C "$TMP" node

# Production dependencies only, without other platforms' binaries or build leftovers.
npm ls --omit=dev --parseable --all 2>/dev/null | tail -n +2 | sed "s|^$ROOT/||" | sort -u >"$TMP/deps"
tar -cJf "$OUTDIR/node_modules.tar.xz" \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/darwin' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/arm64' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_*' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/x64/cliffscope-cuda-provider.json' \
  --exclude='node_modules/better-sqlite3/deps' \
  --exclude='node_modules/better-sqlite3/src' \
  --exclude='node_modules/better-sqlite3/build/Release/obj*' \
  --exclude='node_modules/better-sqlite3/build/Release/.deps' \
  --exclude='node_modules/better-sqlite3/build/Release/*.a' \
  -T "$TMP/deps"

SHARED=${CLIFFSCOPE_SHARED:-$ROOT/../shared}
if [ -f "$SHARED/models/stories260K-hf/config.json" ]; then
  cp -r "$SHARED/models/stories260K-hf" "$OUTDIR/stories260K-hf"
  chmod -R u+w "$OUTDIR/stories260K-hf"
else
  echo "no $SHARED/models/stories260K-hf: gpu-check on the device will skip stories260K" >&2
fi

# The Vulkan loader, as Debian ships it (the device machine's README recipe).
mkdir -p "$TMP/apt/partial"
APT="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$TMP/apt"
apt-get $APT update >/dev/null
(cd "$OUTDIR/gl" && apt-get $APT download libvulkan1 2>/dev/null)

if [ "$CUDA_NPM" = 1 ]; then
  rm -rf .device-cuda
  mkdir -p "$TMP/cuda/onnxruntime-1.29" .device-cuda
  (cd "$TMP/cuda" && npm pack --silent onnxruntime-node@1.29.0 onnxruntime-common@1.29.0 com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 >/dev/null)
  for p in onnxruntime-node onnxruntime-common; do
    mkdir -p "$TMP/cuda/stage/$p"
    tar -xzf "$TMP/cuda/$p-1.29.0.tgz" -C "$TMP/cuda/stage/$p" --strip-components=1
  done
  rm -rf "$TMP/cuda/stage/onnxruntime-node/bin/napi-v6/"{darwin,win32,linux/arm64}
  mkdir -p "$TMP/cuda/stage/provider"
  tar -xzf "$TMP/cuda/com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz" -C "$TMP/cuda/stage/provider" --strip-components=4 \
    package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
  tar -cf - -C "$TMP/cuda/stage" . | xz -T0 -6 >"$TMP/cuda/cuda-route.tar.xz"
  (cd "$TMP/cuda" && split -b 60M -d -a 1 cuda-route.tar.xz part-)
  for f in "$TMP"/cuda/part-*; do
    n=${f##*part-}
    mkdir -p ".device-cuda/part-$n"
    mv "$f" ".device-cuda/part-$n/cuda-route.tar.xz.part"
  done
  (cd "$TMP/cuda" && sha256sum cuda-route.tar.xz | cut -d' ' -f1) >.device-cuda/part-0/sha256
  echo "CUDA route: $(ls -d .device-cuda/part-* | wc -l) parts in .device-cuda/ ($(du -sh .device-cuda | cut -f1))"
fi

SIZE=$(du -sb "$OUTDIR" | cut -f1)
TRACKED=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "$OUTDIR: $((SIZE / 1024 / 1024)) MiB; with the tracked files $(((SIZE + TRACKED) / 1024 / 1024)) MiB of the 64 MiB a call carries"
ls -la "$OUTDIR" "$OUTDIR/gl"
[ $((SIZE + TRACKED)) -lt $LIMIT ] || { echo "too big to carry" >&2; exit 1; }
