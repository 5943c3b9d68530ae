"""Reading a derivation file: its text (within limits) and its front matter.

One reader serves both front ends: ``read_text`` returns a file's text, and
``front_matter`` the ``key: value`` entries between the opening ``---`` lines,
each with its file line and, for ``section "<heading>" key: value``, the
section it is scoped to.

``read_text`` reads at most ``limits.MAX_FILE_BYTES``, refuses directories,
devices and pipes before opening them, accepts a UTF-8 byte-order mark, and
reports every problem at line 1 (or at the line of undecodable bytes) as a
``DerivationError`` whose message never quotes the file's contents.
"""

import difflib
import os
import re
import stat
from dataclasses import dataclass

from refvi.checker.limits import MAX_FILE_BYTES

#: The kinds of error (``DerivationError.kind``, the JSON report's ``kind``):
#: a limit of ``refvi.checker.limits`` exceeded; a check reaching outside the
#: check language; any other malformed input.
LIMITS, UNSUPPORTED, MALFORMED = "limits", "unsupported", "malformed"


class DerivationError(Exception):
    """Input refused: reported as ``path:line: error: message``, exit 2.

    ``kind`` is ``"limits"``, ``"unsupported"`` or ``"malformed"`` (default).
    """

    def __init__(self, path, line, message, kind=MALFORMED):
        super().__init__(f"{path}:{line}: error: {message}")
        self.path = str(path)
        self.line = line
        self.message = message
        self.kind = kind


def read_text(path):
    """The text of the derivation file at ``path`` (DerivationError if it
    cannot be read: missing, a directory or device, too large, not UTF-8)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or type(err).__name__
        raise DerivationError(path, 1, f"cannot read file: {reason}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DerivationError(
            path, 1, "is a directory; give the derivation files (*.md) in it", LIMITS
        )
    if not stat.S_ISREG(info.st_mode):
        raise DerivationError(
            path, 1, "is not a regular file (a device, pipe or socket); refused", LIMITS
        )
    too_big = (
        f"file is larger than {MAX_FILE_BYTES // 2**20} MB (the limit of a derivation)"
    )
    if info.st_size > MAX_FILE_BYTES:
        raise DerivationError(path, 1, too_big, LIMITS)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise DerivationError(path, 1, f"cannot read file: {err.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise DerivationError(path, 1, too_big, LIMITS)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DerivationError(
            path, line, f"file is not UTF-8 text (byte {err.start})"
        ) from None


#: Front-matter keys: the file's own, and those of the LaTeX checker (which
#: may also be scoped to a section).
FILE_KEYS = ("title", "settings", "seeds", "tolerance", "separation", "sigmas")
LATEX_KEYS = (
    "settings", "latent", "observed", "family", "shorthands", "reading", "assume",
    "pinned", "convex", "concave",
)  # fmt: skip
KEYS = FILE_KEYS + LATEX_KEYS[1:]

#: ``section "<heading>" key`` scopes a LaTeX-checker key to one section.
SECTION_RE = re.compile(r'^section\s+"([^"]+)"\s+(\w+)$')


@dataclass(frozen=True)
class Entry:
    """One front-matter line ``key: value`` (``section`` None at top level)."""

    key: str
    value: str
    line: int
    section: str | None = None


def front_matter(lines, path, keys=KEYS, scoped_keys=LATEX_KEYS):
    """The front matter of a file's ``lines``: (entries, first body index,
    keys ignored).

    Front matter is ``---`` on the first line, ``key: value`` lines (blank
    lines and ``#`` comments skipped) and a closing ``---``. A file without it
    gives ``(None, 0, [])``. ``keys`` are refvi's keys at top level,
    ``scoped_keys`` those allowed after ``section "<heading>"``. The front
    matter of a static-site generator (Hugo, Jekyll, Quarto) is accepted:
    other keys are ignored (and returned, for a note), nested values
    (indented lines, ``- item`` lists) skipped, and refvi's keys may also sit
    indented under ``refvi:``. A key close to one of refvi's (``setings``), a
    scoped key refvi does not know, or a missing closing ``---`` is a
    DerivationError at its line.
    """
    if not lines or lines[0].strip() != "---":
        return None, 0, []
    entries, ignored, parent = [], [], None
    for i in range(1, len(lines)):
        raw, text = lines[i], lines[i].strip()
        if text == "---":
            return tuple(entries), i + 1, ignored
        if not text or text.startswith("#"):
            continue
        indented = raw[:1] in (" ", "\t")
        if not indented:
            parent = None
        key, sep, value = text.partition(":")
        key = key.strip()
        if text.startswith("-") or (indented and parent != "refvi"):
            continue  # a list item or a nested value of another key
        if not indented and key == "refvi" and sep and not value.strip():
            parent = "refvi"
            continue
        scoped = SECTION_RE.match(key)
        section, key = (scoped.group(1), scoped.group(2)) if scoped else (None, key)
        allowed = scoped_keys if scoped else keys
        if sep and key in allowed:
            entries.append(Entry(key, value.strip(), i + 1, section))
            continue
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.8)
        if scoped or close or not sep:
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise DerivationError(
                path,
                i + 1,
                f"unknown front-matter entry {text[:60]!r}; {hint}"
                f"expected one of {', '.join(allowed)}",
            )
        if not indented:
            parent = key
        ignored.append(key)
    raise DerivationError(path, 1, "front matter is not closed by a '---' line")
