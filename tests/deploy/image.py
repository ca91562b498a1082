"""Building the gateway's image the way CI does: no registry, no network inside the build.

Three steps, each cached under `~/.cache/llm-cost-gateway/` (or `$XDG_CACHE_HOME`) and in the
Docker engine's own image store, so only the first run on a machine pays for them:

1. the base image: `debootstrap --variant=minbase` of Debian bookworm with python3 and
   python3-venv (Debian's mirror is a package registry these machines reach; the public image
   registries are not), `docker import`ed and tagged by a hash of the debootstrap command;
2. the wheelhouse: `pip download --only-binary=:all:` of the project's dependencies for the
   base's Python (3.11) and this machine's architecture, plus the build backend, keyed by a
   hash of pyproject.toml — the package index's certificate does not verify inside a build
   container here, so nothing is fetched there;
3. `docker build --network none` of a context holding the project's sources and that
   wheelhouse, with the base passed as `--build-arg BASE=…`.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_SUITE = "bookworm"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
BASE_PYTHON = "3.11"  # bookworm's python3
BASE_REPO = "llm-cost-gateway-base"
IMAGE_REPO = "llm-cost-gateway"
# Every image the tests build carries this label, so leftovers can be found and pruned.
TEST_LABEL = "llm-cost-gateway.test=1"
# What the build context needs (the .dockerignore inside keeps the rest of them out).
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md")
CONTEXT_DIRS = ("gateway", "benchmarks", "config")


@dataclass(frozen=True)
class Step:
    """What one step did, for the test's report: cached or built, and how long it took."""

    name: str
    cached: bool
    seconds: float


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "llm-cost-gateway"
    path.mkdir(parents=True, exist_ok=True)
    return path


def docker(*args: str, timeout: float = 600, check: bool = True) -> str:
    """Run the docker client; its output, or an error that carries what it printed."""
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"docker {' '.join(args[:3])}… exited {proc.returncode}:\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


def logs(name: str) -> str:
    """A container's output; the gateway logs to stderr."""
    proc = subprocess.run(
        ["docker", "logs", name], capture_output=True, text=True, timeout=60, check=False
    )
    return proc.stdout + proc.stderr


def engine_problem() -> str | None:
    """None when a Docker engine answers; otherwise why not, in a sentence."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        proc = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if proc.returncode != 0 or not proc.stdout.strip():
        return f"no Docker engine answers ({(proc.stderr or proc.stdout).strip()[:200]})"
    return None


def image_exists(ref: str) -> bool:
    return bool(docker("image", "ls", "-q", ref).strip())


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def base_image() -> tuple[str, Step]:
    """The debootstrapped Debian base, imported into the engine (built once per machine)."""
    started = time.monotonic()
    command = [
        "debootstrap",
        "--variant=minbase",
        f"--include={BASE_PACKAGES}",
        DEBIAN_SUITE,
    ]
    ref = f"{BASE_REPO}:{DEBIAN_SUITE}-{_digest(*command)}"
    if image_exists(ref):
        return ref, Step("base image", True, time.monotonic() - started)
    tarball = cache_dir() / f"{ref.replace(':', '-')}.tar"
    if not tarball.exists():
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
        with tempfile.TemporaryDirectory(prefix="gw-rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            # the default mirror is the one apt uses on these machines
            subprocess.run([*command, str(rootfs)], check=True, capture_output=True, timeout=900)
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
            partial.rename(tarball)
    docker(
        "import",
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        "ENV LANG=C.UTF-8",
        str(tarball),
        ref,
    )
    return ref, Step("base image", False, time.monotonic() - started)


def _requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = project["build-system"]["requires"]
    return [*project["project"]["dependencies"], *build]


def platform_args(machine: str) -> list[str]:
    """Every manylinux tag bookworm's glibc (2.36) runs: pip expands only the legacy aliases
    (manylinux2014 → 2010 → 1) by itself, not the PEP 600 names."""
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(36, 16, -1)]
    tags.append(f"manylinux2014_{machine}")
    return [arg for tag in tags for arg in ("--platform", tag)]


MARKER_ONLY_DEPENDENCIES = ("async-timeout>=4.0.3",)


def wheelhouse() -> tuple[Path, Step]:
    """Binary wheels of every dependency for the base's Python, downloaded on the host."""
    started = time.monotonic()
    machine = platform.machine()
    reqs = _requirements()
    path = (
        cache_dir()
        / f"wheelhouse-cp{BASE_PYTHON.replace('.', '')}-{machine}-{_digest(*reqs, *MARKER_ONLY_DEPENDENCIES)}"
    )
    if (path / ".complete").exists():
        return path, Step("wheelhouse", True, time.monotonic() - started)
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--python-version",
            BASE_PYTHON,
            "--implementation",
            "cp",
            *platform_args(machine),
            "--dest",
            str(partial),
            *reqs,
            # pip evaluates environment markers against the host's Python, not the target's:
            # Debian's python3 is 3.11.2, and redis needs this one below 3.11.3
            *MARKER_ONLY_DEPENDENCIES,
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    (partial / ".complete").touch()
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)
    return path, Step("wheelhouse", False, time.monotonic() - started)


def build_context(dest: Path, wheels: Path) -> Path:
    """The project's sources and the wheelhouse (hard links where the filesystem allows)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in CONTEXT_FILES:
        shutil.copy2(ROOT / name, dest / name)
    for name in CONTEXT_DIRS:
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    house = dest / "deploy" / "wheelhouse"
    house.mkdir(parents=True)
    for wheel in wheels.glob("*.whl"):
        try:
            os.link(wheel, house / wheel.name)
        except OSError:
            shutil.copy2(wheel, house / wheel.name)
    return dest


def build_image(tag: str, base: str, wheels: Path) -> Step:
    """`docker build --network none`: proves the image needs nothing but its context."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gw-context-") as tmp:
        context = build_context(Path(tmp), wheels)
        env_build = {**os.environ, "DOCKER_BUILDKIT": "0"}  # Debian's engine: classic builder
        proc = subprocess.run(
            [
                "docker",
                "build",
                "--network",
                "none",
                "--build-arg",
                f"BASE={base}",
                "--label",
                TEST_LABEL,
                "--tag",
                tag,
                str(context),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env=env_build,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"docker build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}")
    # Each rebuild leaves the previous image untagged, and every build leaves its `build`
    # stage as an untagged image. Keep the newest of those (its layers are the next build's
    # cache: the dependencies' layer above all) and drop the rest; layers in use stay.
    docker("image", "prune", "--force", "--filter", f"label={TEST_LABEL}", check=False)
    dangling = docker("image", "ls", "--quiet", "--filter", "dangling=true").split()  # newest first
    for stale in dangling[1:]:
        docker("image", "rm", stale, check=False)
    # the classic builder prints "Running in" for every step it did not take from its cache
    return Step("image", "Running in" not in proc.stdout, time.monotonic() - started)
