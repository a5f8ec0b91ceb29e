"""The precise prefix-cache scorer, fed by the engines' own KV-cache events (as llm-d's
KV-cache manager is): wire.py decodes vLLM's batches, index.py keeps which replica holds
which block, scorer.py scores candidates, subscriber.py and follower.py are the I/O shell
(owned by the Gateway, runtime.py). The `precise-prefix` profile that routes by the scorer
is in data_plane/gateway/scheduling/profiles.py (docs/kv-events.md)."""
