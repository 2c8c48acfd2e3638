"""Build deploy/Dockerfile with podman, on a machine that can reach no container registry.

    python deploy/image.py build [--tag TAG]   the offline base (if missing), then the image; prints its size
    python deploy/image.py base                only the offline base image

The Dockerfile starts `FROM ${PYTHON_IMAGE}`, by default the public `python:3.11.12-slim-bookworm`.
Where no registry can be reached (CI, a sandbox), this script makes a stand-in from Debian's own
packages: mmdebstrap builds a minimal bookworm root file system with Python 3.11, pip and venv
(the trust store includes the building machine's extra CA certificates from
/usr/local/share/ca-certificates, so a TLS-intercepting proxy to PyPI works inside the build), and
`podman import` turns it into an image. The image is then built from the unchanged Dockerfile with
`--build-arg PYTHON_IMAGE=<that base>`. The base is tagged with a hash of its recipe and reused
while the recipe is the same.

`make image-tools` installs podman, mmdebstrap and runc (Debian packages); `make image` runs
`build`. tests/deploy/test_image.py builds and runs the image the same way.

Podman runs here with `--runtime runc` (crun refuses a host with hybrid cgroups, as some CI
machines have), the network of the host (the build fetches wheels from PyPI; the container reaches
a broker on loopback), and `--ulimit` values no higher than this process's own hard limits (podman's
defaults are higher, and a process without CAP_SYS_RESOURCE cannot raise them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
DOCKERFILE: Final = ROOT / "deploy/Dockerfile"
SUITE: Final = "bookworm"
MIRRORS: Final = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
# What the public python:3.11-slim-bookworm image offers the Dockerfile: `python` with pip and venv,
# CA certificates, and groupadd/useradd (in minbase already).
PACKAGES: Final = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
EXTRA_CA_DIR: Final = Path("/usr/local/share/ca-certificates")
BASE_REPOSITORY: Final = "localhost/trackbridge-base"
DEFAULT_TAG: Final = "localhost/trackbridge:dev"
TOOLS: Final = {"podman": "podman", "mmdebstrap": "mmdebstrap", "runc": "runc"}
"""Program -> the Debian package that ships it (`make image-tools` installs them)."""


class ImageError(Exception):
    """A step of the build failed; the message says which and why."""


def runtime_options() -> list[str]:
    """Options every `podman run`/`podman build` here takes (see the module's docstring)."""
    options = ["--runtime", "runc"]
    # Open files: podman's default (1048576) or this process's hard limit, whichever is lower.
    # Processes: 4096 is plenty for one worker (a few threads); podman's default, or even this
    # process's own hard limit, can be refused by the runtime without CAP_SYS_RESOURCE.
    for name, limit, wanted in (
        ("nofile", resource.RLIMIT_NOFILE, 1048576),
        ("nproc", resource.RLIMIT_NPROC, 4096),
    ):
        _, hard = resource.getrlimit(limit)
        value = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        options += ["--ulimit", f"{name}={value}:{value}"]
    return options


def _extra_cas() -> list[Path]:
    return sorted(EXTRA_CA_DIR.glob("**/*.crt")) if EXTRA_CA_DIR.is_dir() else []


def base_recipe() -> str:
    """Everything the base image is made from; its hash names the image."""
    return json.dumps(
        {
            "suite": SUITE,
            "mirrors": MIRRORS,
            "packages": PACKAGES,
            "cas": [hashlib.sha256(path.read_bytes()).hexdigest() for path in _extra_cas()],
        },
        sort_keys=True,
    )


def base_image() -> str:
    return f"{BASE_REPOSITORY}:{SUITE}-{hashlib.sha256(base_recipe().encode()).hexdigest()[:12]}"


def missing_tools() -> list[str]:
    return [program for program in TOOLS if shutil.which(program) is None]


def _run(command: list[str], what: str, *, timeout: float) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise ImageError(f"{what}: timed out after {timeout:.0f} s") from error
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise ImageError(f"{what} failed (status {result.returncode}):\n{tail}")
    return result.stdout


def image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name], check=False).returncode == 0


def build_base(*, timeout: float = 600) -> str:
    """The offline base image's name, building it first unless it exists."""
    name = base_image()
    if image_exists(name):
        return name
    hooks = [
        # The building machine's extra CAs (a proxy's), then the trust store rebuilt with them.
        *(f"--customize-hook=copy-in {path} /usr/local/share/ca-certificates/" for path in _extra_cas()),
        '--customize-hook=chroot "$1" update-ca-certificates',
    ]
    with tempfile.TemporaryDirectory(prefix="trackbridge-base-") as workdir:
        tarball = Path(workdir) / "rootfs.tar"
        _run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--include=" + ",".join(PACKAGES),
                '--aptopt=Acquire::Languages "none"',
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                *hooks,
                SUITE,
                str(tarball),
                *MIRRORS,
            ],
            "mmdebstrap (the base root file system)",
            timeout=timeout,
        )
        _run(
            ["podman", "import", "--change", "CMD=/bin/bash", str(tarball), name],
            "podman import (the base image)",
            timeout=timeout,
        )
    return name


def build(tag: str = DEFAULT_TAG, *, base: str | None = None, timeout: float = 900) -> str:
    """Build deploy/Dockerfile as `tag` on `base` (default: the offline base); returns the image id."""
    base = base or build_base()
    _run(
        [
            "podman",
            "build",
            *runtime_options(),
            "--network",
            "host",
            # buildah keys neither a bind mount's content nor a stage it mounts from reliably in
            # its layer cache (a stale or an empty /wheels was seen): build every layer afresh.
            "--no-cache",
            # Docker's format keeps HEALTHCHECK (the OCI format has no such field).
            "--format",
            "docker",
            "--file",
            str(DOCKERFILE),
            "--build-arg",
            f"PYTHON_IMAGE={base}",
            "--tag",
            tag,
            str(ROOT),
        ],
        f"podman build of {DOCKERFILE.relative_to(ROOT)}",
        timeout=timeout,
    )
    return inspect(tag)["Id"]


def inspect(name: str) -> dict[str, object]:
    data = json.loads(_run(["podman", "image", "inspect", name], f"podman image inspect {name}", timeout=60))
    found: dict[str, object] = data[0]
    return found


def size(name: str) -> int:
    """The image's size in bytes, as podman reports it (all layers, uncompressed)."""
    value = inspect(name)["Size"]
    assert isinstance(value, int)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "base"])
    parser.add_argument("--tag", default=DEFAULT_TAG, help=f"the image's name (default {DEFAULT_TAG})")
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        packages = " ".join(TOOLS[program] for program in missing)
        print(
            f"missing {', '.join(missing)}: run `make image-tools` (apt-get install {packages})",
            file=sys.stderr,
        )
        return 1
    try:
        if args.command == "base":
            print(build_base())
            return 0
        image_id = build(args.tag)
    except ImageError as error:
        print(f"deploy/image.py: {error}", file=sys.stderr)
        return 1
    print(f"built {args.tag} ({image_id[:12]}): {size(args.tag) / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
