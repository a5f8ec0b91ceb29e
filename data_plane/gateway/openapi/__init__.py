"""The gateway's OpenAPI schema (`GET /openapi.json`): every route, with its real bodies.

`openai_bodies` holds OpenAI's request and response shapes (documentation only: the hot
path does not validate with them), `responses` the error answers each status may carry,
`document` the schema itself, FastAPI's plus the two raw-ASGI proxy routes.
"""
