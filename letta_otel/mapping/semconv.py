"""Attribute, operation and metric names: GenAI semantic conventions v1.41, Letta's own.

The GenAI names are vendored here as plain constants, from the v1.41.1 registry (the
last release that carried them; they moved to ``semantic-conventions-genai``, and
``opentelemetry-semantic-conventions`` marks its GenAI constants deprecated). This is
the one module of the project that spells them: ``tests/mapping/test_semconv_registry.py``
checks every one against the registry YAML kept in ``tests/fixtures/semconv-genai-v1.41.1``,
so a rename fails a test instead of shipping silently. ``server.*``, ``error.*`` and
``exception.*`` are stable conventions and come from the package's public, stable
``opentelemetry.semconv.attributes`` (the SDK depends on it anyway). ``letta.*`` names are
this project's public contract: operators query and alert on them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from opentelemetry.semconv.attributes import error_attributes as _err
from opentelemetry.semconv.attributes import exception_attributes as _exc
from opentelemetry.semconv.attributes import server_attributes as _srv

SEMCONV_VERSION: Final = "1.41.1"
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.41.0"

# --- GenAI attributes (model/gen-ai/registry.yaml, v1.41.1) -----------------------
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_ID: Final = "gen_ai.response.id"
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
REQUEST_TOP_K: Final = "gen_ai.request.top_k"
REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
REQUEST_SEED: Final = "gen_ai.request.seed"
REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
REQUEST_STREAM: Final = "gen_ai.request.stream"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
AGENT_ID: Final = "gen_ai.agent.id"
AGENT_NAME: Final = "gen_ai.agent.name"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_TYPE: Final = "gen_ai.tool.type"
TOKEN_TYPE: Final = "gen_ai.token.type"

# gen_ai.operation.name values.
OP_CHAT: Final = "chat"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_EXECUTE_TOOL: Final = "execute_tool"

# gen_ai.token.type values.
TOKEN_INPUT: Final = "input"
TOKEN_OUTPUT: Final = "output"

# gen_ai.provider.name values (the well-known ones Letta's providers map to).
PROVIDER_OPENAI: Final = "openai"
PROVIDER_ANTHROPIC: Final = "anthropic"
PROVIDER_AZURE_AI_OPENAI: Final = "azure.ai.openai"
PROVIDER_AWS_BEDROCK: Final = "aws.bedrock"
PROVIDER_GCP_GEMINI: Final = "gcp.gemini"
PROVIDER_GCP_VERTEX_AI: Final = "gcp.vertex_ai"
PROVIDER_MISTRAL_AI: Final = "mistral_ai"
PROVIDER_X_AI: Final = "x_ai"
PROVIDER_GROQ: Final = "groq"
PROVIDER_DEEPSEEK: Final = "deepseek"

# --- GenAI client metrics (model/gen-ai/metrics.yaml, v1.41.1) --------------------
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TOKEN_USAGE_UNIT: Final = "{token}"
METRIC_TOKEN_USAGE_INSTRUMENT: Final = "histogram"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_OPERATION_DURATION_UNIT: Final = "s"
METRIC_OPERATION_DURATION_INSTRUMENT: Final = "histogram"
# The explicit bucket boundaries docs/gen-ai/gen-ai-metrics.md (v1.41.1) prescribes.
TOKEN_USAGE_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
OPERATION_DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)

# --- stable conventions ------------------------------------------------------------
SERVER_ADDRESS: Final = _srv.SERVER_ADDRESS
SERVER_PORT: Final = _srv.SERVER_PORT
ERROR_TYPE: Final = _err.ERROR_TYPE
EXCEPTION_TYPE: Final = _exc.EXCEPTION_TYPE
EXCEPTION_MESSAGE: Final = _exc.EXCEPTION_MESSAGE
EXCEPTION_STACKTRACE: Final = _exc.EXCEPTION_STACKTRACE
ERROR_TYPE_OTHER: Final = _err.ErrorTypeValues.OTHER.value

# --- Letta's own identifiers ---------------------------------------------------
LETTA_STEP_ID: Final = "letta.step.id"
LETTA_RUN_ID: Final = "letta.run.id"
LETTA_AGENT_ID: Final = "letta.agent.id"
LETTA_STEP_STATUS: Final = "letta.step.status"
LETTA_STEP_STOP_REASON: Final = "letta.step.stop_reason"
LETTA_STEP_ERROR_TYPE: Final = "letta.step.error_type"
LETTA_TRACE_ID: Final = "letta.trace_id"
LETTA_CALL_TYPE: Final = "letta.call_type"
LETTA_MODEL_HANDLE: Final = "letta.model_handle"
LETTA_PROVIDER_NAME: Final = "letta.provider.name"
LETTA_PROVIDER_CATEGORY: Final = "letta.provider.category"
LETTA_PROVIDER_TRACE_ID: Final = "letta.provider_trace.id"
LETTA_PROVIDER_TRACE_MISSING: Final = "letta.provider_trace.missing"
LETTA_CONTEXT_WINDOW_LIMIT: Final = "letta.context_window_limit"
LETTA_TOTAL_TOKENS: Final = "letta.usage.total_tokens"
LETTA_PROJECT_ID: Final = "letta.project.id"
LETTA_AGENT_TAGS: Final = "letta.agent.tags"
LETTA_STEP_TAGS: Final = "letta.step.tags"
LETTA_STEP_FEEDBACK: Final = "letta.step.feedback"
LETTA_STEP_INCOMPLETE: Final = "letta.step.incomplete"
LETTA_STEP_LLM_REQUEST_NS: Final = "letta.step.llm_request_ns"
LETTA_STEP_TOOL_EXECUTION_NS: Final = "letta.step.tool_execution_ns"
LETTA_STEP_NS: Final = "letta.step.step_ns"
LETTA_TIMING_SOURCE: Final = "letta.timing.source"
LETTA_RUN_STATUS: Final = "letta.run.status"
LETTA_RUN_STOP_REASON: Final = "letta.run.stop_reason"
LETTA_RUN_TYPE: Final = "letta.run.type"
LETTA_RUN_BACKGROUND: Final = "letta.run.background"
LETTA_RUN_TTFT_NS: Final = "letta.run.ttft_ns"
LETTA_TOOL_STATUS: Final = "letta.tool.status"
LETTA_AGENT_TYPE: Final = "letta.agent.type"

# --- Captured content (opt-in, issue 7) ------------------------------------------
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
CONTENT_ATTRIBUTES: Final = frozenset(
    {
        INPUT_MESSAGES,
        OUTPUT_MESSAGES,
        SYSTEM_INSTRUCTIONS,
        TOOL_DEFINITIONS,
        TOOL_CALL_ARGUMENTS,
        TOOL_CALL_RESULT,
    }
)
# model-events.yaml (v1.41.1): event.gen_ai.client.inference.operation.details.
INFERENCE_DETAILS_EVENT: Final = "gen_ai.client.inference.operation.details"

# Resource attributes describing the bridge itself.
BRIDGE_VERSION: Final = "letta_otel.version"
BRIDGE_ID_SCHEME: Final = "letta_otel.id_scheme"

# OpenInference (Arize Phoenix and other OpenInference backends) names a span's kind
# here. An agent_step carries gen_ai.request.model and gen_ai.provider.name but is not
# an LLM call itself; without this Phoenix files every step as a second LLM span.
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
OPENINFERENCE_CHAIN: Final = "CHAIN"

# The provider of an agent invocation is Letta itself (a custom, non-listed value).
LETTA_AGENT_PROVIDER: Final = "letta"

# Letta provider / model_endpoint_type → gen_ai.provider.name. Others pass through.
_PROVIDER_NAMES: Final[dict[str, str]] = {
    "openai": PROVIDER_OPENAI,
    "anthropic": PROVIDER_ANTHROPIC,
    "azure": PROVIDER_AZURE_AI_OPENAI,
    "bedrock": PROVIDER_AWS_BEDROCK,
    "google_ai": PROVIDER_GCP_GEMINI,
    "google_vertex": PROVIDER_GCP_VERTEX_AI,
    "mistral": PROVIDER_MISTRAL_AI,
    "xai": PROVIDER_X_AI,
    "groq": PROVIDER_GROQ,
    "deepseek": PROVIDER_DEEPSEEK,
}


@lru_cache(maxsize=256)  # a few provider names, looked up for every chat span and step
def genai_provider_name(letta_provider: str | None) -> str | None:
    """Map Letta's provider type to the semconv well-known value."""
    if not letta_provider:
        return None
    key = letta_provider.strip().lower()
    return _PROVIDER_NAMES.get(key, key)
