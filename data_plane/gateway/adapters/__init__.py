"""The gateway's adapter API: `POST|GET /v1/adapters`, `PUT|GET|DELETE /v1/adapters/{name}`.

- `routes`: the FastAPI routes (validation, MODEL_REPOSITORY, the tenancy hooks);
- `bodies` (pure): the two request forms and the answers, on the resource's own types;
- `store`: the narrow `AdapterStore` the routes call, and its embedded-default client
  (the Kubernetes one is `discovery/kube_adapter_store.py`);
- `source_check`: the `source` policy check, a 422 naming the field.
"""
