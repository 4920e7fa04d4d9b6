#!/bin/sh
# Installs the system libraries mismatch builds on (OpenBLAS, oneDNN and
# MuJoCo 2.2.2) when they are missing; with the argument "test", also numpy and Chromium,
# which tests use to check that Python reads the .npz files we write and
# that reports render in a browser; with "slurm", Slurm and munge, for the
# cluster test (deploy/slurm/test.sh). Debian and Ubuntu
# only; elsewhere it says what to install. Uses sudo when not run as root.
set -eu

pkgs="libopenblas-dev libdnnl-dev libmujoco-dev"
if [ "${1:-}" = "test" ] && command -v dpkg-query >/dev/null 2>&1; then
	pkgs="$pkgs python3-numpy chromium"
fi
if [ "${1:-}" = "slurm" ] && command -v dpkg-query >/dev/null 2>&1; then
	pkgs="slurm-wlm munge"
fi
missing=""
if command -v dpkg-query >/dev/null 2>&1; then
	for p in $pkgs; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			missing="$missing $p"
		fi
	done
else
	# Not a Debian system: check for the libraries themselves.
	for lib in openblas dnnl mujoco; do
		if ! ldconfig -p 2>/dev/null | grep -q "lib$lib"; then
			echo "mismatch needs lib$lib (OpenBLAS, oneDNN 2.x, and MuJoCo 2.2.x with headers)." >&2
			echo "This is not a Debian/Ubuntu system; install them with your package manager," >&2
			echo "or build with 'go build -tags nodnnl' (without oneDNN) or '-tags purego' (without OpenBLAS and oneDNN); MuJoCo tasks need libmujoco." >&2
			exit 1
		fi
	done
	exit 0
fi
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "missing packages:$missing, and apt-get is not available to install them" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		echo "missing packages:$missing; run as root or install sudo" >&2
		exit 1
	fi
fi
echo "installing:$missing"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
