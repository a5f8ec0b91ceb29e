"""One generation request in flight: what each choice has produced, stop strings, logprobs
and a forced tool call's streamed pieces. Pure: no I/O (the engine is reached only through
`EarlyFinisher`, to end a choice that hit a stop string)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from data_plane.inference.simulator import tool_calls
from data_plane.inference.simulator.engine_core import SimRequest
from data_plane.inference.simulator.logprobs import (
    TokenLogprob,
    chat_logprobs,
    completion_logprobs,
    token_logprob,
)
from data_plane.inference.simulator.protocol.generation import GenerationParams
from data_plane.inference.simulator.text import token_text


class EarlyFinisher(Protocol):
    """What a generation needs of the engine: end a sequence before its planned length."""

    def finish_early(self, sequence: SimRequest, reason: str) -> None: ...


@dataclass
class Choice:
    """What one choice has produced so far."""

    sequence: SimRequest
    text: str = ""
    emitted: int = 0
    tokens: int = 0
    finish_reason: str | None = None
    stop_reason: str | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)
    reported: int = 0
    """Log-probabilities already sent (streams send each token's once)."""
    text_offset: int = 0
    """Characters already sent, where the next completion logprobs' offsets start."""
    call_id: str = ""
    """With a forced tool: the call's id, its `arguments` and their streamed pieces."""
    arguments: str = ""
    pieces: list[str] = field(default_factory=list)
    pieces_sent: int = 0
    named: bool = False
    """The stream has sent the delta that opens the call."""


@dataclass
class Generation:
    """One API request in flight: its choices and the bookkeeping to answer it."""

    params: GenerationParams
    request_id: str
    created: int
    model: str
    prompt_tokens: int
    choices: list[Choice]
    max_stop: int = field(init=False)
    tool: tool_calls.ForcedTool | None = None
    """The tool every choice calls (`tool_choice` "required" or named); None: text."""

    def __post_init__(self) -> None:
        self.max_stop = max((len(s) for s in self.params.stop), default=0)

    @property
    def done(self) -> bool:
        return all(choice.finish_reason is not None for choice in self.choices)

    @property
    def completion_tokens(self) -> int:
        return sum(choice.tokens for choice in self.choices)

    def advance(self, engine: EarlyFinisher, sequence: SimRequest, index: int) -> str | None:
        """Record output token `index` of `sequence`; return the text to emit, or None when
        the choice already ended. Detects stop strings (ending the choice early) and, like
        vLLM, holds back the last len(stop) - 1 characters until they cannot start one."""
        choice = self.choices[sequence.index]
        if choice.finish_reason is not None:
            return None
        token_id = sequence.output_token_ids[index]
        piece = token_text(token_id)
        choice.tokens += 1
        asked = self.params.logprobs
        if asked is not None:
            alternatives = asked if self.params.kind == "chat" else max(asked, 1)
            choice.logprobs.append(token_logprob(piece, token_id, index, alternatives))
        searched_to = len(choice.text)
        choice.text += piece
        last = index + 1 >= len(sequence.output_token_ids)
        emit_to = len(choice.text)
        if self.max_stop:
            window = max(searched_to - self.max_stop + 1, 0)
            hits = [
                (position, stop)
                for stop in self.params.stop
                if (position := choice.text.find(stop, window)) >= 0
            ]
            if hits:
                position, stop = min(hits)
                choice.text = choice.text[:position]
                choice.finish_reason, choice.stop_reason = "stop", stop
                if not last:
                    engine.finish_early(sequence, "stop")
                return self._emit(choice, len(choice.text))
            if not last:
                emit_to = max(len(choice.text) - self.max_stop + 1, choice.emitted)
        if last:
            choice.finish_reason = sequence.planned_finish
        return self._emit(choice, emit_to)

    def logprobs_of(self, choice: Choice, *, fresh: bool) -> dict[str, Any] | None:
        """The choice's logprobs in the answer's shape (`fresh`: only those not yet sent)."""
        asked = self.params.logprobs
        if asked is None:
            return None
        entries = choice.logprobs[choice.reported :] if fresh else choice.logprobs
        offset = choice.text_offset if fresh else 0
        if fresh:
            choice.reported = len(choice.logprobs)
            choice.text_offset += sum(len(e.text) for e in entries)
        if self.params.kind == "chat":
            return chat_logprobs(entries, asked)
        return completion_logprobs(entries, asked, offset)

    def force_tool(self, tool: tool_calls.ForcedTool) -> None:
        """Answer each choice with a call of `tool` instead of its text."""
        self.tool = tool
        for index, choice in enumerate(self.choices):
            choice.call_id = f"chatcmpl-tool-{secrets.token_hex(8)}"
            choice.arguments = tool_calls.arguments(tool, self.params.seed, index)
            planned = len(choice.sequence.output_token_ids)  # the first token names the call
            choice.pieces = tool_calls.argument_pieces(choice.arguments, planned - 1)

    def tool_delta(self, choice: Choice) -> dict[str, Any] | None:
        """The streamed delta of the choice's call for the token just advanced; None: this
        token adds nothing (the arguments are shorter than the tokens)."""
        assert self.tool is not None
        if not choice.named:
            choice.named = True
            opening = tool_calls.first_delta(choice.call_id, self.tool.name)
            if choice.finish_reason is not None:  # a one-token answer: the whole call at once
                opening["tool_calls"][0]["function"]["arguments"] = choice.arguments
                choice.pieces_sent = len(choice.pieces)
            return opening
        if choice.finish_reason is not None:
            piece = "".join(choice.pieces[choice.pieces_sent :])
            choice.pieces_sent = len(choice.pieces)
        elif choice.pieces_sent < len(choice.pieces):
            piece = choice.pieces[choice.pieces_sent]
            choice.pieces_sent += 1
        else:
            return None
        return tool_calls.argument_delta(piece) if piece else {}

    @staticmethod
    def _emit(choice: Choice, end: int) -> str:
        out = choice.text[choice.emitted : end]
        choice.emitted = end
        return out
