"""Attribute names: GenAI semantic conventions v1.41 and Letta's own identifiers.

GenAI names come from ``opentelemetry-semantic-conventions`` so a rename upstream
shows up as an import error, not as silently wrong data. ``letta.*`` names are
this project's public contract: operators query and alert on them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _g
from opentelemetry.semconv.attributes import error_attributes as _err
from opentelemetry.semconv.attributes import exception_attributes as _exc
from opentelemetry.semconv.attributes import server_attributes as _srv

SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.41.0"

# --- GenAI (v1.41) -------------------------------------------------------------
OPERATION_NAME: Final = _g.GEN_AI_OPERATION_NAME
PROVIDER_NAME: Final = _g.GEN_AI_PROVIDER_NAME
REQUEST_MODEL: Final = _g.GEN_AI_REQUEST_MODEL
RESPONSE_MODEL: Final = _g.GEN_AI_RESPONSE_MODEL
RESPONSE_ID: Final = _g.GEN_AI_RESPONSE_ID
RESPONSE_FINISH_REASONS: Final = _g.GEN_AI_RESPONSE_FINISH_REASONS
USAGE_INPUT_TOKENS: Final = _g.GEN_AI_USAGE_INPUT_TOKENS
USAGE_OUTPUT_TOKENS: Final = _g.GEN_AI_USAGE_OUTPUT_TOKENS
USAGE_CACHE_READ_INPUT_TOKENS: Final = _g.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
USAGE_CACHE_CREATION_INPUT_TOKENS: Final = _g.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
USAGE_REASONING_OUTPUT_TOKENS: Final = _g.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
REQUEST_TEMPERATURE: Final = _g.GEN_AI_REQUEST_TEMPERATURE
REQUEST_MAX_TOKENS: Final = _g.GEN_AI_REQUEST_MAX_TOKENS
REQUEST_TOP_P: Final = _g.GEN_AI_REQUEST_TOP_P
REQUEST_TOP_K: Final = _g.GEN_AI_REQUEST_TOP_K
REQUEST_FREQUENCY_PENALTY: Final = _g.GEN_AI_REQUEST_FREQUENCY_PENALTY
REQUEST_PRESENCE_PENALTY: Final = _g.GEN_AI_REQUEST_PRESENCE_PENALTY
REQUEST_STOP_SEQUENCES: Final = _g.GEN_AI_REQUEST_STOP_SEQUENCES
REQUEST_SEED: Final = _g.GEN_AI_REQUEST_SEED
REQUEST_CHOICE_COUNT: Final = _g.GEN_AI_REQUEST_CHOICE_COUNT
REQUEST_STREAM: Final = _g.GEN_AI_REQUEST_STREAM
CONVERSATION_ID: Final = _g.GEN_AI_CONVERSATION_ID
AGENT_ID: Final = _g.GEN_AI_AGENT_ID
AGENT_NAME: Final = _g.GEN_AI_AGENT_NAME
TOOL_NAME: Final = _g.GEN_AI_TOOL_NAME
TOOL_CALL_ID: Final = _g.GEN_AI_TOOL_CALL_ID
TOOL_TYPE: Final = _g.GEN_AI_TOOL_TYPE

OP_CHAT: Final = _g.GenAiOperationNameValues.CHAT.value
OP_INVOKE_AGENT: Final = _g.GenAiOperationNameValues.INVOKE_AGENT.value
OP_EXECUTE_TOOL: Final = _g.GenAiOperationNameValues.EXECUTE_TOOL.value

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
INPUT_MESSAGES: Final = _g.GEN_AI_INPUT_MESSAGES
OUTPUT_MESSAGES: Final = _g.GEN_AI_OUTPUT_MESSAGES
SYSTEM_INSTRUCTIONS: Final = _g.GEN_AI_SYSTEM_INSTRUCTIONS
TOOL_DEFINITIONS: Final = _g.GEN_AI_TOOL_DEFINITIONS
TOOL_CALL_ARGUMENTS: Final = _g.GEN_AI_TOOL_CALL_ARGUMENTS
TOOL_CALL_RESULT: Final = _g.GEN_AI_TOOL_CALL_RESULT
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

# The provider of an agent invocation is Letta itself (a custom, non-listed value).
LETTA_AGENT_PROVIDER: Final = "letta"

# Letta provider / model_endpoint_type → gen_ai.provider.name. Others pass through.
_PROVIDER_NAMES: Final[dict[str, str]] = {
    "openai": _g.GenAiProviderNameValues.OPENAI.value,
    "anthropic": _g.GenAiProviderNameValues.ANTHROPIC.value,
    "azure": _g.GenAiProviderNameValues.AZURE_AI_OPENAI.value,
    "bedrock": _g.GenAiProviderNameValues.AWS_BEDROCK.value,
    "google_ai": _g.GenAiProviderNameValues.GCP_GEMINI.value,
    "google_vertex": _g.GenAiProviderNameValues.GCP_VERTEX_AI.value,
    "mistral": _g.GenAiProviderNameValues.MISTRAL_AI.value,
    "xai": _g.GenAiProviderNameValues.X_AI.value,
    "groq": _g.GenAiProviderNameValues.GROQ.value,
    "deepseek": _g.GenAiProviderNameValues.DEEPSEEK.value,
}


@lru_cache(maxsize=256)  # a few provider names, looked up for every chat span and step
def genai_provider_name(letta_provider: str | None) -> str | None:
    """Map Letta's provider type to the semconv well-known value."""
    if not letta_provider:
        return None
    key = letta_provider.strip().lower()
    return _PROVIDER_NAMES.get(key, key)
