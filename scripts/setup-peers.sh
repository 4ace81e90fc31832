#!/usr/bin/env bash
# Optional benchmark peers: Debian's PyTorch (CPU), numpy and scipy for /usr/bin/python3.
# Not part of scripts/setup.sh (a large download); run it only to time the PyTorch peers:
#   sudo bash scripts/setup-peers.sh
set -euo pipefail
if /usr/bin/python3 -c 'import torch, numpy, scipy' 2>/dev/null; then
  echo "peers present: $(/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)')"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-peers: needs apt-get (Debian/Ubuntu); install PyTorch, numpy and scipy for python3 yourself" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends python3-torch python3-numpy python3-scipy
/usr/bin/python3 -c 'import torch; print("installed torch", torch.__version__, "threads", torch.get_num_threads())'
