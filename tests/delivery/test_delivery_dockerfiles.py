"""Our image convention (docs/delivery.md), checked on every Dockerfile in the repository:
multi-stage, pinned base images, a non-root user, no secrets baked in. hadolint and actionlint run
in `make lint-delivery`; this adds the rules hadolint does not enforce."""

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


def _stages(path: Path) -> list[Stage]:
    stages: list[Stage] = []
    for keyword, rest in _instructions(path):
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
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
