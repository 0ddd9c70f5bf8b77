"""schemathesis generates requests from the app's own OpenAPI schema: zero server errors allowed.

For every operation it sends valid bodies (from the generated record model, so the model really
scores them) and invalid ones (wrong types, missing fields, odd parameters) to a real server.
Hypothesis drives the generation directly (the schemathesis pytest plugin does not load under pytest 9).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_every_operation_is_covered(api_schema):
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert {"POST /predict", "POST /predict/batch", "POST /v1/models/{name}:predict",
            "POST /v2/models/{name}/infer", "GET /metrics"} <= labels


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_server_errors(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    strategy = st.one_of([op.as_strategy(generation_mode=mode) for op in operations])
    seen: dict[str, int] = {}

    @given(case=strategy)
    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def check(case):
        response = case.call(timeout=10)
        seen[case.operation.label] = seen.get(case.operation.label, 0) + 1
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, f"{case.operation.label}: {response.text}"
        assert "Traceback" not in response.text

    check()
    assert len(seen) >= len(operations) // 2, seen
