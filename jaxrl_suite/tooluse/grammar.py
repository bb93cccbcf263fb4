"""The call language: `Call` records, a strict parser of canonical call text and its formatter.

A program is calls joined by ';' (e.g. `set(ant,3);get(ant)`), or the refusal `<no_call>` for no calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from jaxrl_suite.validation import require

NO_CALL = "<no_call>"
CALL_SEPARATOR = ";"


def _is_letter(char: str) -> bool:
    return len(char) == 1 and "a" <= char <= "z"


def _is_digit(char: str) -> bool:
    return len(char) == 1 and "0" <= char <= "9"


def is_name(text: str) -> bool:
    """A tool or key name: one or more lowercase ASCII letters."""
    return isinstance(text, str) and text != "" and all(_is_letter(char) for char in text)


def is_argument(text: str) -> bool:
    """A call argument: a name (lowercase letters) or a number (ASCII digits), never a mix."""
    return is_name(text) or (isinstance(text, str) and text != "" and all(_is_digit(char) for char in text))


@dataclasses.dataclass(frozen=True)
class Call:
    """One tool call: `tool` is a name, `args` a tuple of names or numbers, all kept as text."""

    tool: str
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require(is_name(self.tool), "Call", "tool", self.tool, "lowercase letters a-z")
        require(
            isinstance(self.args, tuple) and all(is_argument(arg) for arg in self.args),
            "Call",
            "args",
            self.args,
            "a tuple of arguments, each lowercase letters a-z or digits 0-9",
        )


class MalformedCallError(ValueError):
    """Call text the grammar rejects; `position` is the 0-based index of the first character it refuses."""

    def __init__(self, position: int, expected: str, found: str) -> None:
        self.position = position
        shown = repr(found) if found else "end of text"
        super().__init__(f"malformed call at position {position}: expected {expected}, found {shown}")


class _Reader:
    """A cursor over call text that raises MalformedCallError at the cursor."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def peek(self) -> str:
        return self.text[self.position] if self.position < len(self.text) else ""

    def at_end(self) -> bool:
        return self.position >= len(self.text)

    def fail(self, expected: str) -> MalformedCallError:
        return MalformedCallError(self.position, expected, self.peek())

    def take_run(self, accepts: Callable[[str], bool]) -> str:
        start = self.position
        while not self.at_end() and accepts(self.peek()):
            self.position += 1
        return self.text[start : self.position]

    def expect(self, char: str, expected: str) -> None:
        if self.peek() != char:
            raise self.fail(expected)
        self.position += 1


def _read_argument(reader: _Reader, expected: str) -> str:
    if _is_letter(reader.peek()):
        return reader.take_run(_is_letter)
    if _is_digit(reader.peek()):
        return reader.take_run(_is_digit)
    raise reader.fail(expected)


def _read_call(reader: _Reader) -> Call:
    tool = reader.take_run(_is_letter)
    if not tool:
        raise reader.fail("a tool name (a-z)")
    reader.expect("(", "a letter or '('")
    if reader.peek() == ")":
        reader.position += 1
        return Call(tool)
    args = [_read_argument(reader, "an argument (a-z or 0-9) or ')'")]
    while reader.peek() == ",":
        reader.position += 1
        args.append(_read_argument(reader, "an argument (a-z or 0-9)"))
    reader.expect(")", "',' or ')'")
    return Call(tool, tuple(args))


def _reader_of(text: str) -> _Reader:
    if not isinstance(text, str):
        raise ValueError(f"invalid call text={text!r}: expected a string")
    return _Reader(text)


def parse_call(text: str) -> Call:
    """Exactly one canonical call, e.g. `move(ant,bee)`; anything else raises MalformedCallError."""
    reader = _reader_of(text)
    call = _read_call(reader)
    if not reader.at_end():
        raise reader.fail("end of text")
    return call


def parse_calls(text: str) -> tuple[Call, ...]:
    """A program: `<no_call>` gives (), otherwise calls joined by ';' with no spaces and no trailing ';'."""
    if text == NO_CALL:
        return ()
    reader = _reader_of(text)
    calls = [_read_call(reader)]
    while not reader.at_end():
        reader.expect(CALL_SEPARATOR, "';' or end of text")
        calls.append(_read_call(reader))
    return tuple(calls)


def format_call(call: Call) -> str:
    """The canonical text of one call: parse_call(format_call(c)) == c."""
    return f"{call.tool}({','.join(call.args)})"


def format_calls(calls: Sequence[Call]) -> str:
    """The canonical text of a program; no calls is the refusal `<no_call>`."""
    return CALL_SEPARATOR.join(format_call(call) for call in calls) if calls else NO_CALL
