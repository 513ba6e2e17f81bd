"""The definitions file kept current: re-read when it, a template file or a template ConfigMap changes.

Checks happen at most once per reload interval, on the request that finds the interval
passed (a scale-to-zero function has no idle thread to poll with). Files are compared
by ``os.stat``; ConfigMap-held templates (``template_config_map``) are re-read and
compared by their text. A GET answers the whole ConfigMap whether or not its
``resourceVersion`` moved, so comparing the text costs no more than comparing the
version and needs nothing beyond the reader the definitions already use; only a
watch would be cheaper, and it needs a thread the function does not keep.

A broken edit keeps the last good definitions and records the problem in
``last_error``. A failed *read* (a ConfigMap missing, forbidden, the API unreachable
for a moment) is not the file's fault and may pass, so it is retried at the next
interval instead of being remembered as the file's state.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from ._definitions import ConfigMapReader, JobDefinitions
from ._errors import DefinitionError, DefinitionsNotLoaded, JobfnError

logger = logging.getLogger(__name__)

#: One template held in a ConfigMap: (namespace, name, key), as the reader takes them.
ConfigMapKey = tuple[str, str, str]


class _ReadFailed(DefinitionError):
    """A ConfigMap-held template could not be read; the next interval tries again."""


class _RecordingReader:
    """The reader for one load: remembers what each ConfigMap read gave, so changes can be seen."""

    def __init__(self, read: ConfigMapReader) -> None:
        self._read = read
        self.texts: dict[ConfigMapKey, str] = {}

    def __call__(self, namespace: str, name: str, key: str) -> str:
        try:
            text = self._read(namespace, name, key)
        except DefinitionError:
            raise
        except JobfnError as error:
            where = f"{namespace}/{name}" if namespace else name
            raise _ReadFailed(
                f"the template in ConfigMap {where!r} (key {key!r}) cannot be read: {error.message}"
            ) from error
        self.texts[(namespace, name, key)] = text
        return text


class DefinitionsFile:
    """The definitions file, re-read when it (or a template file or ConfigMap it names) changes.

    A ConfigMap volume swaps a symlink on update; ``os.stat`` follows it, so the swap
    shows as a new inode.
    """

    def __init__(
        self,
        path: Path,
        reload_interval_seconds: float = 1.0,
        read_config_map: ConfigMapReader | None = None,
    ) -> None:
        self.path = path
        self.reload_interval_seconds = reload_interval_seconds
        self._read_config_map = read_config_map
        self._lock = threading.Lock()
        self._definitions: JobDefinitions | None = None
        self._fingerprint: tuple[Any, ...] | None = None
        self._template_paths: list[Path] = []
        self._config_map_texts: dict[ConfigMapKey, str] = {}
        self._next_check = 0.0
        self.last_error: str | None = None

    def current(self) -> JobDefinitions:
        """The newest good definitions; raises DefinitionsNotLoaded while none has loaded."""
        now = time.monotonic()
        # Once loaded, a request that finds another one checking serves what is loaded.
        if now >= self._next_check and self._lock.acquire(blocking=self._definitions is None):
            try:
                if now >= self._next_check:
                    self._reload_if_changed()
                    self._next_check = time.monotonic() + self.reload_interval_seconds
            finally:
                self._lock.release()
        if self._definitions is None:
            # The caller's answer names no server path (the log line names it).
            raise DefinitionsNotLoaded(f"no job definitions are loaded yet: {self.last_error}")
        return self._definitions

    def _stat(self) -> tuple[Any, ...]:
        marks: list[Any] = []
        for path in [self.path, *self._template_paths]:
            try:
                st = os.stat(path)
                marks.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except OSError as error:
                marks.append(error.errno)
        return tuple(marks)

    def _config_maps_changed(self) -> bool:
        """Whether a ConfigMap-held template read at the last load now reads differently."""
        if self._read_config_map is None:
            return False
        for (namespace, name, key), text in self._config_map_texts.items():
            try:
                if self._read_config_map(namespace, name, key) != text:
                    return True
            except JobfnError:
                return True  # the load that follows records the failure and retries it
        return False

    def _reload_if_changed(self) -> None:
        fingerprint = self._stat()
        if fingerprint == self._fingerprint and not self._config_maps_changed():
            return
        self._fingerprint = fingerprint
        reader = _RecordingReader(self._read_config_map) if self._read_config_map is not None else None
        try:
            text = self.path.read_text(encoding="utf-8")
            definitions = JobDefinitions.from_yaml(text, self.path.parent, reader)
        except (OSError, DefinitionError, UnicodeDecodeError) as error:
            if isinstance(error, _ReadFailed):
                self._fingerprint = None  # not the file's state: read it again next interval
            self._config_map_texts = reader.texts if reader is not None else {}
            self.last_error = _problem(error)
            kept = "keeping the last good definitions" if self._definitions else "none loaded"
            logger.error("definitions file %s is invalid (%s): %s", self.path, kept, self.last_error)
            return
        self._template_paths = [d.template_file for d in definitions if d.template_file]
        self._fingerprint = self._stat()
        self._config_map_texts = reader.texts if reader is not None else {}
        self._definitions = definitions
        self.last_error = None
        logger.info("loaded %d job definitions from %s", len(definitions), self.path)


def _problem(error: OSError | DefinitionError | UnicodeDecodeError) -> str:
    """What is wrong with the definitions file, in words that name no server path."""
    if isinstance(error, DefinitionError):
        return error.message
    if isinstance(error, OSError):
        return f"the definitions file cannot be read: {error.strerror or type(error).__name__}"
    return f"the definitions file is not UTF-8 text (byte {error.start})"
