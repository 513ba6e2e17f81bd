"""What goes into an image built from a Containerfile, read from the Containerfile itself.

The cache key of a project image must change exactly when something the build reads
changes: the Containerfile, every file its COPY/ADD lines bring in from the build
context (minus what the context's .dockerignore excludes, as buildah and docker do) and
the images it starts FROM. The paths are read from the Containerfile rather than listed
here, so a Containerfile edit (a renamed package, a new COPY) keeps the key honest.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

IGNORE_FILES = (".containerignore", ".dockerignore")  # the order buildah looks for them
LEADING_FLAGS = re.compile(r"^(?:--\S+\s+)*")


class ContainerfileError(Exception):
    """A Containerfile this reader cannot account for (so its key would be wrong)."""


@dataclass(frozen=True)
class BuildInputs:
    base_images: tuple[str, ...]  # FROM names, as written
    copied_sources: tuple[str, ...]  # COPY/ADD sources, relative to the build context


def instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined."""
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped, as buildah does
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        if whole:
            keyword, _, arguments = whole.partition(" ")
            yield keyword.upper(), arguments.strip()
    if pending.strip():
        keyword, _, arguments = pending.strip().partition(" ")
        yield keyword.upper(), arguments.strip()


def _copy_sources(arguments: str) -> list[str] | None:
    """The context paths a COPY/ADD reads; None when it copies from another stage."""
    flags = LEADING_FLAGS.match(arguments)
    flag_text = flags.group(0) if flags else ""
    if "--from" in flag_text:
        return None
    rest = arguments[len(flag_text) :].strip()
    paths = [str(path) for path in json.loads(rest)] if rest.startswith("[") else shlex.split(rest)
    if len(paths) < 2:
        raise ContainerfileError(f"COPY/ADD without a source and a destination: {arguments!r}")
    sources = paths[:-1]
    if any("://" in source for source in sources):
        raise ContainerfileError(f"ADD of a URL cannot be keyed offline: {arguments!r}")
    return sources


def read_inputs(containerfile: Path) -> BuildInputs:
    bases: list[str] = []
    sources: list[str] = []
    for keyword, arguments in instructions(containerfile.read_text()):
        if keyword == "FROM":
            words = [word for word in arguments.split() if not word.startswith("--")]
            bases.append(words[0])
        elif keyword in ("COPY", "ADD"):
            sources.extend(_copy_sources(arguments) or [])
    if not bases:
        raise ContainerfileError(f"{containerfile} has no FROM")
    return BuildInputs(tuple(bases), tuple(sources))


def ignore_patterns(context: Path) -> list[str]:
    for name in IGNORE_FILES:
        path = context / name
        if path.exists():
            patterns = []
            for line in path.read_text().splitlines():
                pattern = line.strip()
                if not pattern or pattern.startswith("#"):
                    continue
                if pattern.startswith("!"):
                    # Exceptions change which later patterns apply; not needed here yet.
                    raise ContainerfileError(f"{path}: '!' patterns are not supported by the key reader")
                patterns.append(pattern.strip("/"))
            return patterns
    return []


def _matches(relative: str, pattern: str) -> bool:
    if pattern.startswith("**/"):
        parts = relative.split("/")
        return any(fnmatch.fnmatchcase("/".join(parts[i:]), pattern[3:]) for i in range(len(parts)))
    return fnmatch.fnmatchcase(relative, pattern)


def is_ignored(relative: str, patterns: list[str]) -> bool:
    """Whether the context path (or a directory above it) is excluded."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(_matches(prefix, pattern) for prefix in prefixes for pattern in patterns)


def context_files(context: Path, sources: tuple[str, ...]) -> list[Path]:
    """Every file the sources bring in, sorted, ignored ones left out."""
    patterns = ignore_patterns(context)
    found: set[Path] = set()
    for source in sources:
        matches = (
            sorted(context.glob(source.strip("/"))) if any(c in source for c in "*?[") else [context / source]
        )
        if not matches or not all(match.exists() for match in matches):
            raise ContainerfileError(f"COPY source {source!r} is not in the build context {context}")
        for match in matches:
            candidates = [match] if match.is_file() else [p for p in match.rglob("*") if p.is_file()]
            for candidate in candidates:
                if not is_ignored(candidate.relative_to(context).as_posix(), patterns):
                    found.add(candidate)
    return sorted(found)


def inputs_digest(containerfile: Path, context: Path, base_keys: dict[str, str]) -> str:
    """A hash of everything the build reads; base_keys maps each FROM name to its key."""
    inputs = read_inputs(containerfile)
    digest = hashlib.sha256()
    digest.update(b"containerfile\0" + containerfile.read_bytes())
    for base in inputs.base_images:
        if base not in base_keys:
            raise ContainerfileError(
                f"{containerfile}: FROM {base} is not an image built here (nothing is pulled)"
            )
        digest.update(f"\0from\0{base}\0{base_keys[base]}".encode())
    for ignore_file in IGNORE_FILES:
        if (context / ignore_file).exists():
            digest.update(b"\0ignore\0" + (context / ignore_file).read_bytes())
    for path in context_files(context, inputs.copied_sources):
        # The executable bit is copied into the image; other mode bits are not kept by COPY.
        executable = b"x" if path.stat().st_mode & 0o111 else b"-"
        digest.update(b"\0file\0" + path.relative_to(context).as_posix().encode() + b"\0" + executable)
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
