"""Our image convention (docs/delivery.md), checked on every Dockerfile in the repository:
multi-stage, pinned base images named by build arguments (so the local test bed can pass its own
bases), a non-root user, no secrets baked in. hadolint and actionlint run in
`make lint-delivery`; this adds the rules hadolint does not enforce."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from assistente_testbed.paths import repo_root

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.I)


def _dockerfiles() -> list[Path]:
    out = subprocess.run(
        [
            "git",
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "*Dockerfile",
            "*.Dockerfile",
        ],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [repo_root() / line for line in out.split()]


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


DOCKERFILES = _dockerfiles()


def test_every_image_the_workflow_publishes_has_its_dockerfile() -> None:
    workflow = yaml.safe_load((repo_root() / ".github" / "workflows" / "ci.yml").read_text())
    images = workflow["jobs"]["images"]["strategy"]["matrix"]["include"]
    assert {i["image"] for i in images} == {"operator", "api", "worker", "rasa", "actions"}
    for image in images:
        assert repo_root() / image["file"] in DOCKERFILES, image["file"]
        assert (repo_root() / image["context"]).is_dir()
        if image["target"]:
            names = {s.name for s in _stages(repo_root() / image["file"])}
            assert image["target"] in names, f"{image['file']} has no stage {image['target']}"


class Stage:
    def __init__(self, base: str, name: str | None) -> None:
        self.base = base
        self.name = name
        self.instructions: list[tuple[str, str]] = []


def _global_args(path: Path) -> dict[str, str]:
    """ARGs declared before the first FROM, with their defaults (what FROM lines may use)."""
    args: dict[str, str] = {}
    for keyword, rest in _instructions(path):
        if keyword == "FROM":
            break
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name.strip()] = _expand(default.strip(), args)
    return args


def _expand(text: str, args: dict[str, str]) -> str:
    """`${ARG}` and `$ARG` replaced by the defaults declared so far."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


def _stages(path: Path) -> list[Stage]:
    """The stages, with `${ARG}` in FROM resolved to the ARG's default (the published build)."""
    defaults = _global_args(path)
    stages: list[Stage] = []
    for keyword, rest in _instructions(path):
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(_expand(words[0], defaults), name))
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return stages


def _effective_user(stage: Stage, by_name: dict[str, Stage]) -> str | None:
    users = [rest for keyword, rest in stage.instructions if keyword == "USER"]
    if users:
        return users[-1]
    parent = by_name.get(stage.base)
    return _effective_user(parent, by_name) if parent is not None else None


def _runtime_stages(stages: list[Stage]) -> list[Stage]:
    """Stages an image is built from: not the base of another stage, not copied from."""
    bases = {s.base for s in stages}
    copied = {
        m.group(1)
        for s in stages
        for keyword, rest in s.instructions
        if keyword == "COPY" and (m := re.search(r"--from=(\S+)", rest))
    }
    return [s for s in stages if s.name is None or (s.name not in bases and s.name not in copied)]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(repo_root())))
def test_dockerfile_follows_the_image_convention(path: Path) -> None:
    stages = _stages(path)
    assert len(stages) >= 2, "multi-stage: build tools stay out of the runtime image"

    by_name = {s.name: s for s in stages if s.name}
    for stage in stages:
        if stage.base in by_name:
            continue
        image = stage.base
        assert "@sha256:" in image or ":" in image.split("/")[-1], f"unpinned base: {image}"
        assert not image.endswith(":latest"), f"':latest' is not a pin: {image}"

    for stage in _runtime_stages(stages):
        user = _effective_user(stage, by_name)
        assert user is not None, f"runtime stage {stage.name or stage.base} sets a USER"
        assert user.split(":")[0] not in {"root", "0"}, "the runtime user is not root"

    for keyword, rest in _instructions(path):
        if keyword in {"ENV", "ARG"}:
            name = re.split(r"[=\s]", rest, maxsplit=1)[0]
            has_value = "=" in rest or (keyword == "ENV" and len(rest.split()) > 1)
            assert not (SECRET_NAME.search(name) and has_value), f"secret baked in: {rest}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(repo_root())))
def test_every_upstream_base_is_a_build_argument(path: Path) -> None:
    """FROM names an upstream image only through an ARG (`*_BASE` or `*_IMAGE`) with a pinned
    default, so the local test bed builds the same Dockerfile from bases of its own."""
    stage_names = {s.name for s in _stages(path) if s.name}
    defaults = _global_args(path)
    for keyword, rest in _instructions(path):
        if keyword != "FROM":
            continue
        base = next(w for w in rest.split() if not w.startswith("--"))
        if base in stage_names:
            continue
        match = re.fullmatch(r"\$\{(\w+_(?:BASE|IMAGE))\}", base)
        assert match, f"FROM {base}: name the upstream image with an ARG *_BASE or *_IMAGE"
        assert defaults.get(match.group(1)), f"ARG {match.group(1)} needs a pinned default"


def test_the_local_image_build_passes_every_base_argument() -> None:
    """The test bed's image catalogue replaces every base argument of the Dockerfiles it
    builds, so no local build falls back to an upstream image it could not pull."""
    from assistente_testbed.images import DockerfileImage, recipes

    project_images = [r for r in recipes().values() if isinstance(r, DockerfileImage)]
    assert {r.name for r in project_images} == {"api", "worker", "rasa", "actions", "operator"}
    for recipe in project_images:
        assert set(recipe.base_args) == set(_global_args(recipe.dockerfile)), recipe.name
