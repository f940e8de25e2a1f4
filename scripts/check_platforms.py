"""Would brainlib's pins install on Linux x86_64, Linux aarch64, macOS arm64 and Windows?

For each platform: evaluate the environment markers of pyproject.toml's core
dependencies and the ``cpu`` and ``book`` extras *for that platform* (pip
evaluates markers for the machine it runs on, even with ``--platform``), then
ask pip to resolve them from binary wheels only, as that platform would:

    pip install --dry-run --ignore-installed --only-binary=:all: \
        --platform TAG ... --python-version 3.11 --implementation cp --target DIR REQS

Needs the package index; nothing is installed. Usage:

    python scripts/check_platforms.py [--python 3.11,3.12,3.13] [--extras cpu,book] [PLATFORM ...]

Exit status 0 when every platform resolves; the tensorflow package chosen and
the number of packages are printed per platform.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
#: the Python versions brainlib supports (pyproject's requires-python)
PYTHONS = ("3.11", "3.12", "3.13")

#: marker environment and pip platform tags of each platform checked
PLATFORMS = {
    "linux-x86_64": (
        {"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux",
         "os_name": "posix"},
        ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
         "manylinux2014_x86_64", "manylinux1_x86_64", "linux_x86_64"],
    ),
    "linux-aarch64": (
        {"sys_platform": "linux", "platform_machine": "aarch64", "platform_system": "Linux",
         "os_name": "posix"},
        ["manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_26_aarch64",
         "manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64"],
    ),
    "macos-arm64": (
        {"sys_platform": "darwin", "platform_machine": "arm64", "platform_system": "Darwin",
         "os_name": "posix"},
        [f"macosx_{v}_0_arm64" for v in (15, 14, 13, 12, 11)]
        + [f"macosx_{v}_0_universal2" for v in (15, 14, 13, 12, 11)]
        + [f"macosx_10_{v}_universal2" for v in (15, 13, 9)],
    ),
    "windows-amd64": (
        {"sys_platform": "win32", "platform_machine": "AMD64", "platform_system": "Windows",
         "os_name": "nt"},
        ["win_amd64"],
    ),
}  # fmt: skip


def requirements_for(platform: str, extras=("cpu", "book"), python: str = "3.11") -> list[str]:
    """pyproject's requirements (core + ``extras``) whose markers hold on ``platform``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = {**PLATFORMS[platform][0], "python_version": python,
           "python_full_version": f"{python}.0", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "extra": ""}  # fmt: skip
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    out = []
    for line in lines:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            req.marker = None
            out.append(str(req))
    return out


def check(platform: str, python: str, extras) -> tuple[bool, str]:
    reqs = requirements_for(platform, extras, python)
    tags = [a for tag in PLATFORMS[platform][1] for a in ("--platform", tag)]
    with tempfile.TemporaryDirectory() as target:
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
               "--only-binary=:all:", *tags, "--python-version", python, "--implementation",
               "cp", "--target", target, "--quiet", "--report", "-", *reqs]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return False, proc.stderr.strip().splitlines()[-1] if proc.stderr else "pip failed"
    names = re.findall(r'"name": "([^"]+)"', proc.stdout)
    versions = re.findall(r'"name": "(tensorflow[^"]*)",\s*"version": "([^"]+)"', proc.stdout)
    tf = ", ".join(f"{n} {v}" for n, v in versions) or "no tensorflow"
    return True, f"{len(names)} packages, {tf}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "platforms",
        nargs="*",
        metavar="PLATFORM",
        help="any of " + ", ".join(PLATFORMS) + " (default: all)",
    )
    p.add_argument(
        "--python",
        default=",".join(PYTHONS),
        help=f"Python versions, comma-separated (default {','.join(PYTHONS)})",
    )
    p.add_argument("--extras", default="cpu,book", help="extras to include (default cpu,book)")
    args = p.parse_args(argv)
    ok = True
    unknown = sorted(set(args.platforms) - set(PLATFORMS))
    if unknown:
        p.error(f"unknown platforms {unknown}; known: {sorted(PLATFORMS)}")
    extras = tuple(filter(None, args.extras.split(",")))
    for python in filter(None, args.python.split(",")):
        for platform in args.platforms or PLATFORMS:
            good, what = check(platform, python, extras)
            ok &= good
            print(f"{platform:14s} python {python}: {'ok  ' if good else 'FAIL'} {what}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
