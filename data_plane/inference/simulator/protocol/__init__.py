"""vLLM's OpenAI-compatible request validation and response shapes, without a web framework.

Pure: no I/O. The parts, in the order a request meets them:
- `errors`: `ApiError` (OpenAI's error shape) and the pydantic-style schema errors vLLM 0.32
  answers with ("Bad Request"s; sampling errors are "BadRequestError"s, unknown models 404
  "NotFoundError"s).
- `fields`: typed readers of one body field each, coercing as pydantic does.
- `generation`: `parse_completion` / `parse_chat` turn a decoded JSON body into a
  `GenerationParams`.
- `sampling`: the checks that follow the model check (`check_sampling`,
  `check_prompt_length`).
- `answers` and `chunks`: the JSON objects vLLM sends, field for field, whole
  (non-streamed) and as stream chunks; `model_cards`: `/v1/models` entries and the version.
"""
