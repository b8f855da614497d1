"""Tracing settings come from OpenTelemetry's own variables, checked like every setting."""

from __future__ import annotations

import pytest

from token_service.config import load_settings
from token_service.errors import ConfigurationError
from token_service.observability.tracing import TraceExporter, TraceSampler

BASE = {"TOKEN_SERVICE_AUTH_SHARED_SECRET": "s" * 32}


def test_tracing_is_off_without_an_exporter() -> None:
    settings = load_settings(BASE).tracing

    assert settings.exporters == ()
    assert not settings.enabled


def test_none_is_no_exporter() -> None:
    assert not load_settings({**BASE, "OTEL_TRACES_EXPORTER": "none"}).tracing.enabled


def test_exporters_are_a_comma_separated_list() -> None:
    settings = load_settings({**BASE, "OTEL_TRACES_EXPORTER": "otlp, console"}).tracing

    assert settings.exporters == (TraceExporter.OTLP, TraceExporter.CONSOLE)


def test_an_unknown_exporter_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**BASE, "OTEL_TRACES_EXPORTER": "zipkin"})

    assert any("OTEL_TRACES_EXPORTER" in problem for problem in raised.value.problems)


def test_the_shared_endpoint_gets_the_traces_path() -> None:
    settings = load_settings(
        {**BASE, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}
    ).tracing

    assert settings.otlp_endpoint == "http://c:4318/v1/traces"


def test_the_traces_endpoint_is_used_as_given() -> None:
    settings = load_settings(
        {
            **BASE,
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://shared:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example.com/ingest",
        }
    ).tracing

    assert settings.otlp_endpoint == "https://traces.example.com/ingest"


def test_an_endpoint_that_is_no_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**BASE, "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"})

    assert any("OTEL_EXPORTER_OTLP_ENDPOINT" in problem for problem in raised.value.problems)


def test_grpc_is_refused_naming_the_supported_protocol() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**BASE, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})

    assert any("http/protobuf" in problem for problem in raised.value.problems)


def test_sampler_and_ratio_are_read() -> None:
    settings = load_settings(
        {
            **BASE,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
        }
    ).tracing

    assert settings.sampler is TraceSampler.PARENT_BASED_TRACE_ID_RATIO
    assert settings.sampler_ratio == 0.25


@pytest.mark.parametrize("ratio", ["1.5", "-0.1", "half"])
def test_a_ratio_outside_zero_to_one_is_a_configuration_error(ratio: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**BASE, "OTEL_TRACES_SAMPLER_ARG": ratio})

    assert any("OTEL_TRACES_SAMPLER_ARG" in problem for problem in raised.value.problems)


def test_the_service_name_is_read() -> None:
    settings = load_settings({**BASE, "OTEL_SERVICE_NAME": "tokens-eu"}).tracing

    assert settings.service_name == "tokens-eu"


def test_sdk_disabled_turns_tracing_off_whatever_else_is_set() -> None:
    settings = load_settings(
        {**BASE, "OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}
    ).tracing

    assert not settings.enabled


def test_access_log_probe_sample_rate_above_one_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**BASE, "TOKEN_SERVICE_ACCESS_LOG_PROBE_SAMPLE_RATE": "2"})

    assert any("ACCESS_LOG_PROBE_SAMPLE_RATE" in problem for problem in raised.value.problems)
