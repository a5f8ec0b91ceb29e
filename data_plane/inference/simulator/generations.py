"""From validated parameters to sequences on the engine, and their tokens back: what the
chat/completions and Responses routes share."""

from __future__ import annotations

import secrets
import time
from typing import NamedTuple

from data_plane.inference.simulator.engine import SimEngine, Sink
from data_plane.inference.simulator.engine_core import SimRequest
from data_plane.inference.simulator.generation_state import Choice, Generation
from data_plane.inference.simulator.protocol.errors import model_not_found
from data_plane.inference.simulator.protocol.generation import GenerationParams
from data_plane.inference.simulator.protocol.sampling import check_prompt_length
from data_plane.inference.simulator.text import plan_output, render_chat, tokenize


class Running(NamedTuple):
    generation: Generation
    sink: Sink


def resolve_model(engine: SimEngine, name: str | None) -> tuple[str, str | None]:
    """The model a request names (the base model when it names none), and its adapter."""
    model = name or engine.served_model_name
    if model == engine.served_model_name:
        return model, None
    if model not in engine.adapters:
        raise model_not_found(model, engine.served_model_name)
    return model, model


class Generations:
    """Starts generations on one engine and follows them to their end."""

    def __init__(self, engine: SimEngine) -> None:
        self.engine = engine

    def submit(self, params: GenerationParams, model: str, adapter: str | None) -> Running:
        """Plan every choice of the request and queue its sequences on the engine."""
        generation = self._start(params, model, adapter)
        sink = Sink()
        self.engine.submit([c.sequence for c in generation.choices], sink, n=params.n)
        return Running(generation, sink)

    def abort_unfinished(self, generation: Generation) -> None:
        """End the choices still running (the client left, or the answer failed)."""
        for choice in generation.choices:
            if choice.finish_reason is None:
                self.engine.finish_early(choice.sequence, "abort")

    async def drain(self, generation: Generation, sink: Sink) -> None:
        """Wait for every choice to finish, recording its tokens."""
        while not generation.done:
            for sequence, index in await sink.next_batch():
                generation.advance(self.engine, sequence, index)

    def _start(self, params: GenerationParams, model: str, adapter: str | None) -> Generation:
        engine = self.engine
        if params.kind == "chat":
            assert params.messages is not None
            prompts: list[list[int]] = [tokenize(render_chat(params.messages))]
        else:
            prompts = [p if isinstance(p, list) else tokenize(p) for p in params.prompts]
        for prompt in prompts:
            check_prompt_length(len(prompt), engine.max_model_len)
        prefix = "chatcmpl" if params.kind == "chat" else "cmpl"
        request_id = f"{prefix}-{secrets.token_hex(8)}"
        arrival = engine.now()
        sequences: list[SimRequest] = []
        for prompt_index, prompt in enumerate(prompts):
            room = engine.max_model_len - len(prompt)
            for i in range(params.n):
                index = prompt_index * params.n + i
                plan = plan_output(
                    engine_seed=engine.seed,
                    request_seed=params.seed,
                    adapter=adapter,
                    prompt_token_ids=prompt,
                    index=i,
                    max_tokens=params.max_tokens,
                    room=room,
                    ignore_eos=params.ignore_eos,
                )
                sequences.append(
                    SimRequest(
                        request_id=f"{request_id}-{index}",
                        prompt_token_ids=prompt,
                        output_token_ids=plan.token_ids,
                        arrival_time=arrival,
                        adapter=adapter,
                        cache_salt=params.cache_salt,
                        index=index,
                        planned_finish=plan.finish_reason,
                        max_tokens=min(params.max_tokens or room, room),
                    )
                )
        return Generation(
            params=params,
            request_id=request_id,
            created=int(time.time()),
            model=model,
            prompt_tokens=sum(len(p) for p in prompts),
            choices=[Choice(sequence) for sequence in sequences],
        )
