"""schemathesis against the served OpenAPI document: generated requests for every
endpoint never get a 5xx, and every answer matches the schema.

(schemathesis' own pytest plugin does not run on pytest 9, so the test drives its
strategies with Hypothesis directly.)"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance


@pytest.fixture(scope="module")
def operations(ui_url):
    schema = schemathesis.openapi.from_url(ui_url + "openapi.json")
    return {op.label: op for op in (result.ok() for result in schema.get_all_operations())}


@pytest.mark.parametrize("label", ["POST /api/v1/tasks/submit/", "GET /api/v1/tasks/{job_id}/status/",
                                   "GET /api/v1/tasks/{job_id}/result/", "POST /api/v1/tasks/{job_id}/cancel/",
                                   "GET /api/v1/operations/"])
def test_no_server_errors_and_answers_match_the_schema(operations, label):
    @given(case=operations[label].as_strategy())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case):
        # Bytes that fit the schema's "binary" are rarely an image, so a refusal of
        # schema-valid data is expected; every other check runs.
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    check()
