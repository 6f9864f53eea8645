-- Letta 0.16.8 PostgreSQL schema for the live-test kit (tests/live/kit), loaded by
-- tests/live/kit/server.py into an empty database with psql.
--
-- Source: the database migrations of https://github.com/letta-ai/letta at tag 0.16.8, run
-- with `alembic upgrade head` (167 revisions, head 1c28e167b74f) against PostgreSQL 16 +
-- pgvector 0.8.5, then `pg_dump --schema-only --no-owner` plus the alembic_version row.
-- The letta 0.16.8 wheel ships neither the migrations nor code that creates the tables, and
-- SQLAlchemy's create_all misses server defaults (the message_seq_id sequence), so the
-- dump is vendored. Letta is Copyright 2023, Letta authors, licensed under the Apache
-- License 2.0 (the same text as this repository's LICENSE file); this file is derived from
-- Letta's migrations and is unchanged below this header.
--
--
-- PostgreSQL database dump
--

\restrict dcUyA8g6tdVgrJy8ntLtTNmZfde5WQOeoR5FLfYV6baVhqICg9v7Jec09MMWc02

-- Dumped from database version 16.14
-- Dumped by pg_dump version 16.14

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: vector; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;


--
-- Name: EXTENSION vector; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION vector IS 'vector data type and ivfflat and hnsw access methods';


--
-- Name: sandboxtype; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.sandboxtype AS ENUM (
    'E2B',
    'MODAL',
    'LOCAL'
);


--
-- Name: stepstatus; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.stepstatus AS ENUM (
    'PENDING',
    'SUCCESS',
    'FAILED',
    'CANCELLED'
);


--
-- Name: stopreasontype; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.stopreasontype AS ENUM (
    'end_turn',
    'error',
    'invalid_tool_call',
    'max_steps',
    'no_tool_call',
    'tool_rule',
    'cancelled'
);


--
-- Name: vectordbprovider; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.vectordbprovider AS ENUM (
    'NATIVE',
    'TPUF',
    'PINECONE'
);


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: agent_environment_variables; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.agent_environment_variables (
    id character varying NOT NULL,
    key character varying NOT NULL,
    value character varying NOT NULL,
    description character varying,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    agent_id character varying NOT NULL,
    value_enc text
);


--
-- Name: agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.agents (
    id character varying NOT NULL,
    name character varying,
    created_at timestamp with time zone DEFAULT now(),
    description character varying,
    message_ids json,
    system character varying,
    agent_type character varying,
    llm_config json,
    embedding_config json,
    metadata_ json,
    tool_rules json,
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    project_id character varying,
    template_id character varying,
    base_template_id character varying,
    message_buffer_autoclear boolean NOT NULL,
    enable_sleeptime boolean,
    response_format json,
    last_run_completion timestamp with time zone,
    last_run_duration_ms integer,
    timezone character varying,
    max_files_open integer,
    per_file_view_window_char_limit integer,
    hidden boolean,
    entity_id character varying,
    deployment_id character varying,
    _vector_db_namespace character varying,
    last_stop_reason character varying,
    compaction_settings json
);


--
-- Name: agents_tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.agents_tags (
    agent_id character varying NOT NULL,
    tag character varying NOT NULL
);


--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: archival_passages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.archival_passages (
    id character varying NOT NULL,
    text character varying NOT NULL,
    embedding_config json,
    metadata_ json NOT NULL,
    embedding public.vector(4096),
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    archive_id character varying NOT NULL,
    tags json
);


--
-- Name: archives; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.archives (
    name character varying NOT NULL,
    description character varying,
    metadata_ json,
    id character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    vector_db_provider public.vectordbprovider NOT NULL,
    _vector_db_namespace character varying,
    embedding_config json
);


--
-- Name: archives_agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.archives_agents (
    agent_id character varying NOT NULL,
    archive_id character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    is_owner boolean NOT NULL
);


--
-- Name: block; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.block (
    id character varying NOT NULL,
    value character varying NOT NULL,
    "limit" integer NOT NULL,
    template_name character varying,
    label character varying NOT NULL,
    metadata_ json,
    description character varying,
    is_template boolean NOT NULL,
    organization_id character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    current_history_entry_id character varying,
    version integer DEFAULT 1 NOT NULL,
    read_only boolean NOT NULL,
    preserve_on_migration boolean,
    project_id character varying,
    entity_id character varying,
    base_template_id character varying,
    template_id character varying,
    deployment_id character varying,
    hidden boolean
);


--
-- Name: block_history; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.block_history (
    description text,
    label character varying NOT NULL,
    value text NOT NULL,
    "limit" bigint NOT NULL,
    metadata_ json,
    actor_type character varying,
    actor_id character varying,
    block_id character varying NOT NULL,
    sequence_number integer NOT NULL,
    organization_id character varying NOT NULL,
    id character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying
);


--
-- Name: blocks_agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.blocks_agents (
    agent_id character varying NOT NULL,
    block_id character varying NOT NULL,
    block_label character varying NOT NULL
);


--
-- Name: blocks_conversations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.blocks_conversations (
    conversation_id character varying NOT NULL,
    block_id character varying NOT NULL,
    block_label character varying NOT NULL
);


--
-- Name: blocks_tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.blocks_tags (
    block_id character varying NOT NULL,
    tag character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL
);


--
-- Name: conversation_messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.conversation_messages (
    id character varying NOT NULL,
    conversation_id character varying,
    agent_id character varying NOT NULL,
    message_id character varying NOT NULL,
    "position" integer NOT NULL,
    in_context boolean NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL
);


--
-- Name: conversations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.conversations (
    id character varying NOT NULL,
    agent_id character varying NOT NULL,
    summary character varying,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    model character varying,
    model_settings json,
    last_message_at timestamp with time zone
);


--
-- Name: file_contents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.file_contents (
    file_id character varying NOT NULL,
    text text NOT NULL,
    id character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying
);


--
-- Name: files; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.files (
    id character varying NOT NULL,
    source_id character varying NOT NULL,
    file_name character varying,
    file_path character varying,
    file_type character varying,
    file_size integer,
    file_creation_date character varying,
    file_last_modified_date character varying,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    processing_status character varying NOT NULL,
    error_message text,
    original_file_name character varying,
    total_chunks integer,
    chunks_embedded integer
);


--
-- Name: files_agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.files_agents (
    id character varying NOT NULL,
    file_id character varying NOT NULL,
    agent_id character varying NOT NULL,
    is_open boolean NOT NULL,
    visible_content text,
    last_accessed_at timestamp with time zone DEFAULT now() NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    file_name character varying NOT NULL,
    source_id character varying NOT NULL,
    start_line integer,
    end_line integer
);


--
-- Name: groups; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.groups (
    id character varying NOT NULL,
    description character varying NOT NULL,
    manager_type character varying NOT NULL,
    manager_agent_id character varying,
    termination_token character varying,
    max_turns integer,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    agent_ids json NOT NULL,
    sleeptime_agent_frequency integer,
    turns_counter integer,
    last_processed_message_id character varying,
    max_message_buffer_length integer,
    min_message_buffer_length integer,
    project_id character varying,
    base_template_id character varying,
    template_id character varying,
    deployment_id character varying,
    hidden boolean
);


--
-- Name: groups_agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.groups_agents (
    group_id character varying NOT NULL,
    agent_id character varying NOT NULL
);


--
-- Name: groups_blocks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.groups_blocks (
    group_id character varying NOT NULL,
    block_id character varying NOT NULL
);


--
-- Name: identities; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.identities (
    id character varying NOT NULL,
    identifier_key character varying NOT NULL,
    name character varying NOT NULL,
    identity_type character varying NOT NULL,
    project_id character varying,
    organization_id character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    properties json DEFAULT '[]'::jsonb NOT NULL
);


--
-- Name: identities_agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.identities_agents (
    identity_id character varying NOT NULL,
    agent_id character varying NOT NULL
);


--
-- Name: identities_blocks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.identities_blocks (
    identity_id character varying NOT NULL,
    block_id character varying NOT NULL
);


--
-- Name: jobs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.jobs (
    id character varying NOT NULL,
    user_id character varying NOT NULL,
    status character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    completed_at timestamp without time zone,
    metadata_ json,
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    job_type character varying NOT NULL,
    request_config json,
    callback_url character varying,
    callback_sent_at timestamp without time zone,
    callback_status_code integer,
    callback_error character varying,
    ttft_ns bigint,
    total_duration_ns bigint,
    organization_id character varying,
    stop_reason character varying,
    background boolean
);


--
-- Name: llm_batch_items; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.llm_batch_items (
    id character varying NOT NULL,
    llm_config json NOT NULL,
    request_status character varying NOT NULL,
    step_status character varying NOT NULL,
    step_state json NOT NULL,
    batch_request_result json,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    agent_id character varying NOT NULL,
    llm_batch_id character varying NOT NULL
);


--
-- Name: llm_batch_job; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.llm_batch_job (
    id character varying NOT NULL,
    status character varying NOT NULL,
    llm_provider character varying NOT NULL,
    create_batch_response json NOT NULL,
    latest_polling_response json,
    last_polled_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    letta_batch_job_id character varying NOT NULL
);


--
-- Name: mcp_oauth; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.mcp_oauth (
    id character varying NOT NULL,
    state character varying(255) NOT NULL,
    server_id character varying(255),
    server_url text NOT NULL,
    server_name text NOT NULL,
    authorization_url text,
    authorization_code text,
    access_token text,
    refresh_token text,
    token_type character varying(50) NOT NULL,
    expires_at timestamp with time zone,
    scope text,
    client_id text,
    client_secret text,
    redirect_uri text,
    status character varying(20) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    user_id character varying NOT NULL,
    access_token_enc text,
    refresh_token_enc text,
    client_secret_enc text,
    authorization_code_enc text
);


--
-- Name: mcp_server; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.mcp_server (
    id character varying NOT NULL,
    server_name character varying NOT NULL,
    server_type character varying NOT NULL,
    server_url character varying,
    stdio_config json,
    organization_id character varying NOT NULL,
    is_deleted boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    _created_by_id character varying,
    _last_updated_by_id character varying,
    metadata_ json,
    token character varying,
    custom_headers json,
    token_enc text,
    custom_headers_enc text
);


--
-- Name: mcp_tools; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.mcp_tools (
    mcp_server_id character varying NOT NULL,
    tool_id character varying NOT NULL,
    id character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL
);


--
-- Name: message_seq_id; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.message_seq_id
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.messages (
    id character varying NOT NULL,
    agent_id character varying NOT NULL,
    role character varying NOT NULL,
    text character varying,
    model character varying,
    name character varying,
    tool_calls json NOT NULL,
    tool_call_id character varying,
    created_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    step_id character varying,
    otid character varying,
    tool_returns json,
    group_id character varying,
    content json,
    sequence_id bigint DEFAULT nextval('public.message_seq_id'::regclass) NOT NULL,
    sender_id character varying,
    batch_item_id character varying,
    is_err boolean,
    approval_request_id character varying,
    approve boolean,
    denial_reason character varying,
    run_id character varying,
    approvals json,
    conversation_id character varying
);


--
-- Name: organizations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.organizations (
    id character varying NOT NULL,
    name character varying NOT NULL,
    created_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    privileged_tools boolean NOT NULL
);


--
-- Name: passage_tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.passage_tags (
    id character varying NOT NULL,
    tag character varying NOT NULL,
    passage_id character varying NOT NULL,
    archive_id character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL
);


--
-- Name: prompts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.prompts (
    id character varying NOT NULL,
    prompt character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    project_id character varying
);


--
-- Name: provider_models; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.provider_models (
    handle character varying NOT NULL,
    display_name character varying NOT NULL,
    name character varying NOT NULL,
    provider_id character varying NOT NULL,
    organization_id character varying,
    model_type character varying NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    model_endpoint_type character varying NOT NULL,
    max_context_window integer,
    supports_token_streaming boolean,
    supports_tool_calling boolean,
    embedding_dim integer,
    id character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying
);


--
-- Name: provider_trace_metadata; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.provider_trace_metadata (
    id character varying NOT NULL,
    step_id character varying,
    agent_id character varying,
    agent_tags json,
    call_type character varying,
    run_id character varying,
    source character varying,
    org_id character varying,
    user_id character varying,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL
);


--
-- Name: provider_traces; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.provider_traces (
    id character varying NOT NULL,
    request_json json NOT NULL,
    response_json json NOT NULL,
    step_id character varying,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    agent_id character varying,
    agent_tags json,
    call_type character varying,
    run_id character varying,
    source character varying,
    org_id character varying,
    user_id character varying,
    compaction_settings json,
    llm_config json
);


--
-- Name: providers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.providers (
    name character varying NOT NULL,
    api_key character varying,
    id character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying,
    provider_type character varying,
    base_url character varying,
    provider_category character varying,
    access_key character varying,
    region character varying,
    api_version character varying,
    api_key_enc text,
    access_key_enc text,
    last_synced timestamp with time zone
);


--
-- Name: run_metrics; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.run_metrics (
    id character varying NOT NULL,
    run_start_ns bigint,
    run_ns bigint,
    num_steps integer,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    project_id character varying,
    agent_id character varying NOT NULL,
    organization_id character varying NOT NULL,
    base_template_id character varying,
    template_id character varying,
    deployment_id character varying,
    tools_used json
);


--
-- Name: runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.runs (
    id character varying NOT NULL,
    status character varying NOT NULL,
    completed_at timestamp without time zone,
    stop_reason character varying,
    background boolean,
    metadata_ json,
    request_config json,
    agent_id character varying NOT NULL,
    callback_url character varying,
    callback_sent_at timestamp without time zone,
    callback_status_code integer,
    callback_error character varying,
    ttft_ns bigint,
    total_duration_ns bigint,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    project_id character varying,
    base_template_id character varying,
    template_id character varying,
    deployment_id character varying,
    conversation_id character varying
);


--
-- Name: sandbox_configs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sandbox_configs (
    id character varying NOT NULL,
    type public.sandboxtype NOT NULL,
    config json NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL
);


--
-- Name: sandbox_environment_variables; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sandbox_environment_variables (
    id character varying NOT NULL,
    key character varying NOT NULL,
    value character varying NOT NULL,
    description character varying,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    sandbox_config_id character varying NOT NULL,
    value_enc text
);


--
-- Name: source_passages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.source_passages (
    id character varying NOT NULL,
    text character varying NOT NULL,
    embedding_config json,
    metadata_ json NOT NULL,
    embedding public.vector(4096),
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    file_id character varying,
    source_id character varying NOT NULL,
    file_name character varying NOT NULL,
    tags json
);


--
-- Name: sources; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sources (
    id character varying NOT NULL,
    name character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    embedding_config json NOT NULL,
    description character varying,
    metadata_ json,
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    instructions character varying,
    vector_db_provider public.vectordbprovider NOT NULL
);


--
-- Name: sources_agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sources_agents (
    agent_id character varying NOT NULL,
    source_id character varying NOT NULL
);


--
-- Name: step_metrics; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.step_metrics (
    id character varying NOT NULL,
    organization_id character varying,
    provider_id character varying,
    llm_request_ns bigint,
    tool_execution_ns bigint,
    step_ns bigint,
    base_template_id character varying,
    template_id character varying,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    project_id character varying,
    agent_id character varying NOT NULL,
    step_start_ns bigint,
    llm_request_start_ns bigint,
    run_id character varying
);


--
-- Name: steps; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.steps (
    completion_tokens integer DEFAULT 0 NOT NULL,
    prompt_tokens integer DEFAULT 0 NOT NULL,
    total_tokens integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    id character varying NOT NULL,
    origin character varying,
    organization_id character varying,
    provider_id character varying,
    provider_name character varying,
    model character varying,
    context_window_limit integer,
    completion_tokens_details json,
    tags json,
    tid character varying,
    model_endpoint character varying,
    trace_id character varying,
    agent_id character varying,
    provider_category character varying,
    feedback character varying,
    project_id character varying,
    stop_reason character varying,
    error_type character varying,
    error_data json,
    status public.stepstatus,
    run_id character varying,
    prompt_tokens_details json,
    request_id character varying,
    model_handle character varying,
    cached_input_tokens integer,
    cache_write_tokens integer,
    reasoning_tokens integer
);


--
-- Name: tools; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tools (
    id character varying NOT NULL,
    name character varying NOT NULL,
    description character varying,
    source_type character varying NOT NULL,
    source_code character varying,
    json_schema json,
    tags json NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL,
    return_char_limit integer,
    tool_type character varying NOT NULL,
    args_json_schema json,
    metadata_ json,
    pip_requirements json,
    npm_requirements json,
    default_requires_approval boolean,
    enable_parallel_execution boolean,
    project_id character varying
);


--
-- Name: tools_agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tools_agents (
    agent_id character varying NOT NULL,
    tool_id character varying NOT NULL
);


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id character varying NOT NULL,
    name character varying NOT NULL,
    created_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now(),
    is_deleted boolean DEFAULT false NOT NULL,
    _created_by_id character varying,
    _last_updated_by_id character varying,
    organization_id character varying NOT NULL
);


--
-- Name: agent_environment_variables agent_environment_variables_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_environment_variables
    ADD CONSTRAINT agent_environment_variables_pkey PRIMARY KEY (id);


--
-- Name: archival_passages agent_passages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.archival_passages
    ADD CONSTRAINT agent_passages_pkey PRIMARY KEY (id);


--
-- Name: agents agents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agents
    ADD CONSTRAINT agents_pkey PRIMARY KEY (id);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: archives_agents archives_agents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.archives_agents
    ADD CONSTRAINT archives_agents_pkey PRIMARY KEY (agent_id, archive_id);


--
-- Name: archives archives_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.archives
    ADD CONSTRAINT archives_pkey PRIMARY KEY (id);


--
-- Name: block_history block_history_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.block_history
    ADD CONSTRAINT block_history_pkey PRIMARY KEY (id);


--
-- Name: block block_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.block
    ADD CONSTRAINT block_pkey PRIMARY KEY (id);


--
-- Name: blocks_conversations blocks_conversations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_conversations
    ADD CONSTRAINT blocks_conversations_pkey PRIMARY KEY (conversation_id, block_id, block_label);


--
-- Name: conversation_messages conversation_messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_messages
    ADD CONSTRAINT conversation_messages_pkey PRIMARY KEY (id);


--
-- Name: conversations conversations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_pkey PRIMARY KEY (id);


--
-- Name: file_contents file_contents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.file_contents
    ADD CONSTRAINT file_contents_pkey PRIMARY KEY (file_id, id);


--
-- Name: files_agents files_agents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.files_agents
    ADD CONSTRAINT files_agents_pkey PRIMARY KEY (id, file_id, agent_id);


--
-- Name: files files_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.files
    ADD CONSTRAINT files_pkey PRIMARY KEY (id);


--
-- Name: groups_agents groups_agents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups_agents
    ADD CONSTRAINT groups_agents_pkey PRIMARY KEY (group_id, agent_id);


--
-- Name: groups_blocks groups_blocks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups_blocks
    ADD CONSTRAINT groups_blocks_pkey PRIMARY KEY (group_id, block_id);


--
-- Name: groups groups_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups
    ADD CONSTRAINT groups_pkey PRIMARY KEY (id);


--
-- Name: identities_agents identities_agents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.identities_agents
    ADD CONSTRAINT identities_agents_pkey PRIMARY KEY (identity_id, agent_id);


--
-- Name: identities_blocks identities_blocks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.identities_blocks
    ADD CONSTRAINT identities_blocks_pkey PRIMARY KEY (identity_id, block_id);


--
-- Name: identities identities_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.identities
    ADD CONSTRAINT identities_pkey PRIMARY KEY (id);


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);


--
-- Name: llm_batch_items llm_batch_items_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_batch_items
    ADD CONSTRAINT llm_batch_items_pkey PRIMARY KEY (id);


--
-- Name: llm_batch_job llm_batch_job_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_batch_job
    ADD CONSTRAINT llm_batch_job_pkey PRIMARY KEY (id);


--
-- Name: mcp_oauth mcp_oauth_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mcp_oauth
    ADD CONSTRAINT mcp_oauth_pkey PRIMARY KEY (id);


--
-- Name: mcp_oauth mcp_oauth_state_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mcp_oauth
    ADD CONSTRAINT mcp_oauth_state_key UNIQUE (state);


--
-- Name: mcp_server mcp_server_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mcp_server
    ADD CONSTRAINT mcp_server_pkey PRIMARY KEY (id);


--
-- Name: mcp_tools mcp_tools_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mcp_tools
    ADD CONSTRAINT mcp_tools_pkey PRIMARY KEY (id);


--
-- Name: messages messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_pkey PRIMARY KEY (id);


--
-- Name: organizations organizations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.organizations
    ADD CONSTRAINT organizations_pkey PRIMARY KEY (id);


--
-- Name: passage_tags passage_tags_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.passage_tags
    ADD CONSTRAINT passage_tags_pkey PRIMARY KEY (id);


--
-- Name: steps pk_steps_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.steps
    ADD CONSTRAINT pk_steps_id PRIMARY KEY (id);


--
-- Name: prompts prompts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.prompts
    ADD CONSTRAINT prompts_pkey PRIMARY KEY (id);


--
-- Name: provider_models provider_models_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.provider_models
    ADD CONSTRAINT provider_models_pkey PRIMARY KEY (id);


--
-- Name: provider_trace_metadata provider_trace_metadata_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.provider_trace_metadata
    ADD CONSTRAINT provider_trace_metadata_pkey PRIMARY KEY (created_at, id);


--
-- Name: provider_traces provider_traces_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.provider_traces
    ADD CONSTRAINT provider_traces_pkey PRIMARY KEY (id);


--
-- Name: providers providers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.providers
    ADD CONSTRAINT providers_pkey PRIMARY KEY (id);


--
-- Name: run_metrics run_metrics_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_metrics
    ADD CONSTRAINT run_metrics_pkey PRIMARY KEY (id);


--
-- Name: runs runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (id);


--
-- Name: sandbox_configs sandbox_configs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sandbox_configs
    ADD CONSTRAINT sandbox_configs_pkey PRIMARY KEY (id);


--
-- Name: sandbox_environment_variables sandbox_environment_variables_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sandbox_environment_variables
    ADD CONSTRAINT sandbox_environment_variables_pkey PRIMARY KEY (id);


--
-- Name: source_passages source_passages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.source_passages
    ADD CONSTRAINT source_passages_pkey PRIMARY KEY (id);


--
-- Name: sources_agents sources_agents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sources_agents
    ADD CONSTRAINT sources_agents_pkey PRIMARY KEY (agent_id, source_id);


--
-- Name: sources sources_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sources
    ADD CONSTRAINT sources_pkey PRIMARY KEY (id);


--
-- Name: step_metrics step_metrics_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.step_metrics
    ADD CONSTRAINT step_metrics_pkey PRIMARY KEY (id);


--
-- Name: tools tools_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tools
    ADD CONSTRAINT tools_pkey PRIMARY KEY (id);


--
-- Name: agent_environment_variables uix_key_agent; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_environment_variables
    ADD CONSTRAINT uix_key_agent UNIQUE (key, agent_id);


--
-- Name: sandbox_environment_variables uix_key_sandbox_config; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sandbox_environment_variables
    ADD CONSTRAINT uix_key_sandbox_config UNIQUE (key, sandbox_config_id);


--
-- Name: tools uix_name_organization; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tools
    ADD CONSTRAINT uix_name_organization UNIQUE (name, organization_id);


--
-- Name: mcp_server uix_name_organization_mcp_server; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mcp_server
    ADD CONSTRAINT uix_name_organization_mcp_server UNIQUE (server_name, organization_id);


--
-- Name: tools uix_organization_project_name; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tools
    ADD CONSTRAINT uix_organization_project_name UNIQUE NULLS NOT DISTINCT (organization_id, project_id, name);


--
-- Name: sandbox_configs uix_type_organization; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sandbox_configs
    ADD CONSTRAINT uix_type_organization UNIQUE (type, organization_id);


--
-- Name: archives_agents unique_agent_archive; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.archives_agents
    ADD CONSTRAINT unique_agent_archive UNIQUE (agent_id);


--
-- Name: blocks_agents unique_agent_block; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_agents
    ADD CONSTRAINT unique_agent_block UNIQUE (agent_id, block_id);


--
-- Name: agents_tags unique_agent_tag; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agents_tags
    ADD CONSTRAINT unique_agent_tag UNIQUE (agent_id, tag);


--
-- Name: tools_agents unique_agent_tool; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tools_agents
    ADD CONSTRAINT unique_agent_tool UNIQUE (agent_id, tool_id);


--
-- Name: block unique_block_id_label; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.block
    ADD CONSTRAINT unique_block_id_label UNIQUE (id, label);


--
-- Name: blocks_tags unique_block_tag; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_tags
    ADD CONSTRAINT unique_block_tag PRIMARY KEY (block_id, tag);


--
-- Name: blocks_conversations unique_conversation_block; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_conversations
    ADD CONSTRAINT unique_conversation_block UNIQUE (conversation_id, block_id);


--
-- Name: conversation_messages unique_conversation_message; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_messages
    ADD CONSTRAINT unique_conversation_message UNIQUE (conversation_id, message_id);


--
-- Name: provider_models unique_handle_per_org_and_type; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.provider_models
    ADD CONSTRAINT unique_handle_per_org_and_type UNIQUE (handle, organization_id, model_type);


--
-- Name: identities unique_identifier_key_project_id_organization_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.identities
    ADD CONSTRAINT unique_identifier_key_project_id_organization_id UNIQUE NULLS NOT DISTINCT (identifier_key, project_id, organization_id);


--
-- Name: blocks_agents unique_label_per_agent; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_agents
    ADD CONSTRAINT unique_label_per_agent UNIQUE (agent_id, block_label);


--
-- Name: blocks_conversations unique_label_per_conversation; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_conversations
    ADD CONSTRAINT unique_label_per_conversation UNIQUE (conversation_id, block_label);


--
-- Name: provider_models unique_model_per_provider_and_type; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.provider_models
    ADD CONSTRAINT unique_model_per_provider_and_type UNIQUE (name, provider_id, model_type);


--
-- Name: providers unique_name_organization_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.providers
    ADD CONSTRAINT unique_name_organization_id UNIQUE (name, organization_id);


--
-- Name: files_agents uq_agent_filename; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.files_agents
    ADD CONSTRAINT uq_agent_filename UNIQUE (agent_id, file_name);


--
-- Name: files_agents uq_file_agent; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.files_agents
    ADD CONSTRAINT uq_file_agent UNIQUE (file_id, agent_id);


--
-- Name: file_contents uq_file_contents_file_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.file_contents
    ADD CONSTRAINT uq_file_contents_file_id UNIQUE (file_id);


--
-- Name: messages uq_messages_sequence_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT uq_messages_sequence_id UNIQUE (sequence_id);


--
-- Name: passage_tags uq_passage_tag; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.passage_tags
    ADD CONSTRAINT uq_passage_tag UNIQUE (passage_id, tag);


--
-- Name: sources uq_source_name_organization; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sources
    ADD CONSTRAINT uq_source_name_organization UNIQUE (name, organization_id);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: archival_passages_created_at_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX archival_passages_created_at_id_idx ON public.archival_passages USING btree (created_at, id);


--
-- Name: created_at_label_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX created_at_label_idx ON public.block USING btree (created_at, label);


--
-- Name: idx_agent_environment_variables_agent_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_agent_environment_variables_agent_id ON public.agent_environment_variables USING btree (agent_id);


--
-- Name: idx_messages_on_updated_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_messages_on_updated_at ON public.messages USING btree (updated_at);


--
-- Name: idx_messages_step_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_messages_step_id ON public.messages USING btree (step_id);


--
-- Name: ix_agent_filename; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_agent_filename ON public.files_agents USING btree (agent_id, file_name);


--
-- Name: ix_agents_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_agents_created_at ON public.agents USING btree (created_at, id);


--
-- Name: ix_agents_organization_id_created_by_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_agents_organization_id_created_by_id ON public.agents USING btree (organization_id, _created_by_id);


--
-- Name: ix_agents_organization_id_deployment_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_agents_organization_id_deployment_id ON public.agents USING btree (organization_id, deployment_id);


--
-- Name: ix_agents_project_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_agents_project_id ON public.agents USING btree (project_id);


--
-- Name: ix_agents_tags_agent_id_tag; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_agents_tags_agent_id_tag ON public.agents_tags USING btree (agent_id, tag);


--
-- Name: ix_agents_tags_tag_agent_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_agents_tags_tag_agent_id ON public.agents_tags USING btree (tag, agent_id);


--
-- Name: ix_archival_passages_archive_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_archival_passages_archive_id ON public.archival_passages USING btree (archive_id);


--
-- Name: ix_archival_passages_org_archive; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_archival_passages_org_archive ON public.archival_passages USING btree (organization_id, archive_id);


--
-- Name: ix_archives_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_archives_created_at ON public.archives USING btree (created_at, id);


--
-- Name: ix_archives_organization_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_archives_organization_id ON public.archives USING btree (organization_id);


--
-- Name: ix_block_current_history_entry_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_block_current_history_entry_id ON public.block USING btree (current_history_entry_id);


--
-- Name: ix_block_hidden; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_block_hidden ON public.block USING btree (hidden);


--
-- Name: ix_block_history_block_id_sequence; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_block_history_block_id_sequence ON public.block_history USING btree (block_id, sequence_number);


--
-- Name: ix_block_is_template; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_block_is_template ON public.block USING btree (is_template);


--
-- Name: ix_block_org_project_template; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_block_org_project_template ON public.block USING btree (organization_id, project_id, is_template);


--
-- Name: ix_block_organization_id_deployment_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_block_organization_id_deployment_id ON public.block USING btree (organization_id, deployment_id);


--
-- Name: ix_blocks_agents_block_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_blocks_agents_block_id ON public.blocks_agents USING btree (block_id);


--
-- Name: ix_blocks_agents_block_label_agent_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_blocks_agents_block_label_agent_id ON public.blocks_agents USING btree (block_label, agent_id);


--
-- Name: ix_blocks_conversations_block_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_blocks_conversations_block_id ON public.blocks_conversations USING btree (block_id);


--
-- Name: ix_conv_msg_agent_conversation; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_conv_msg_agent_conversation ON public.conversation_messages USING btree (agent_id, conversation_id);


--
-- Name: ix_conv_msg_agent_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_conv_msg_agent_id ON public.conversation_messages USING btree (agent_id);


--
-- Name: ix_conv_msg_conversation_position; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_conv_msg_conversation_position ON public.conversation_messages USING btree (conversation_id, "position");


--
-- Name: ix_conv_msg_message_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_conv_msg_message_id ON public.conversation_messages USING btree (message_id);


--
-- Name: ix_conversations_agent_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_conversations_agent_id ON public.conversations USING btree (agent_id);


--
-- Name: ix_conversations_org_agent; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_conversations_org_agent ON public.conversations USING btree (organization_id, agent_id);


--
-- Name: ix_conversations_org_agent_last_message_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_conversations_org_agent_last_message_at ON public.conversations USING btree (organization_id, agent_id, last_message_at);


--
-- Name: ix_file_agent; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_file_agent ON public.files_agents USING btree (file_id, agent_id);


--
-- Name: ix_files_org_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_files_org_created ON public.files USING btree (organization_id, created_at DESC);


--
-- Name: ix_files_processing_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_files_processing_status ON public.files USING btree (processing_status);


--
-- Name: ix_files_source_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_files_source_created ON public.files USING btree (source_id, created_at DESC);


--
-- Name: ix_jobs_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_user_id ON public.jobs USING btree (user_id);


--
-- Name: ix_llm_batch_items_agent_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_llm_batch_items_agent_id ON public.llm_batch_items USING btree (agent_id);


--
-- Name: ix_llm_batch_items_llm_batch_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_llm_batch_items_llm_batch_id ON public.llm_batch_items USING btree (llm_batch_id);


--
-- Name: ix_llm_batch_items_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_llm_batch_items_status ON public.llm_batch_items USING btree (request_status);


--
-- Name: ix_llm_batch_job_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_llm_batch_job_created_at ON public.llm_batch_job USING btree (created_at);


--
-- Name: ix_llm_batch_job_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_llm_batch_job_status ON public.llm_batch_job USING btree (status);


--
-- Name: ix_messages_agent_conversation_sequence; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_messages_agent_conversation_sequence ON public.messages USING btree (agent_id, conversation_id, sequence_id);


--
-- Name: ix_messages_agent_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_messages_agent_created_at ON public.messages USING btree (agent_id, created_at);


--
-- Name: ix_messages_agent_sequence; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_messages_agent_sequence ON public.messages USING btree (agent_id, sequence_id);


--
-- Name: ix_messages_conversation_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_messages_conversation_id ON public.messages USING btree (conversation_id);


--
-- Name: ix_messages_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_messages_created_at ON public.messages USING btree (created_at, id);


--
-- Name: ix_messages_org_agent; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_messages_org_agent ON public.messages USING btree (organization_id, agent_id);


--
-- Name: ix_messages_run_sequence; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_messages_run_sequence ON public.messages USING btree (run_id, sequence_id);


--
-- Name: ix_passage_tags_org_archive; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_passage_tags_org_archive ON public.passage_tags USING btree (organization_id, archive_id);


--
-- Name: ix_passage_tags_tag; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_passage_tags_tag ON public.passage_tags USING btree (tag);


--
-- Name: ix_provider_models_handle; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_provider_models_handle ON public.provider_models USING btree (handle);


--
-- Name: ix_provider_models_model_type; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_provider_models_model_type ON public.provider_models USING btree (model_type);


--
-- Name: ix_provider_models_organization_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_provider_models_organization_id ON public.provider_models USING btree (organization_id);


--
-- Name: ix_provider_models_provider_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_provider_models_provider_id ON public.provider_models USING btree (provider_id);


--
-- Name: ix_provider_trace_metadata_id; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_provider_trace_metadata_id ON public.provider_trace_metadata USING btree (id);


--
-- Name: ix_provider_trace_metadata_step_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_provider_trace_metadata_step_id ON public.provider_trace_metadata USING btree (step_id);


--
-- Name: ix_runs_agent_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_agent_id ON public.runs USING btree (agent_id);


--
-- Name: ix_runs_conversation_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_conversation_id ON public.runs USING btree (conversation_id);


--
-- Name: ix_runs_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_created_at ON public.runs USING btree (created_at, id);


--
-- Name: ix_runs_organization_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_organization_id ON public.runs USING btree (organization_id);


--
-- Name: ix_sources_agents_source_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_sources_agents_source_id ON public.sources_agents USING btree (source_id);


--
-- Name: ix_step_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_step_id ON public.provider_traces USING btree (step_id);


--
-- Name: ix_step_metrics_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_step_metrics_run_id ON public.step_metrics USING btree (run_id);


--
-- Name: ix_steps_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_steps_run_id ON public.steps USING btree (run_id);


--
-- Name: ix_tools_agents_tool_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_tools_agents_tool_id ON public.tools_agents USING btree (tool_id);


--
-- Name: ix_tools_created_at_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_tools_created_at_name ON public.tools USING btree (created_at, name);


--
-- Name: ix_tools_organization_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_tools_organization_id ON public.tools USING btree (organization_id);


--
-- Name: ix_tools_organization_id_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_tools_organization_id_name ON public.tools USING btree (organization_id, name);


--
-- Name: source_created_at_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX source_created_at_id_idx ON public.sources USING btree (created_at, id);


--
-- Name: source_passages_created_at_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX source_passages_created_at_id_idx ON public.source_passages USING btree (created_at, id);


--
-- Name: source_passages_file_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX source_passages_file_id_idx ON public.source_passages USING btree (file_id);


--
-- Name: source_passages_org_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX source_passages_org_idx ON public.source_passages USING btree (organization_id);


--
-- Name: agent_environment_variables agent_environment_variables_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_environment_variables
    ADD CONSTRAINT agent_environment_variables_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: agent_environment_variables agent_environment_variables_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_environment_variables
    ADD CONSTRAINT agent_environment_variables_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: archival_passages agent_passages_archive_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.archival_passages
    ADD CONSTRAINT agent_passages_archive_id_fkey FOREIGN KEY (archive_id) REFERENCES public.archives(id) ON DELETE CASCADE;


--
-- Name: archival_passages agent_passages_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.archival_passages
    ADD CONSTRAINT agent_passages_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: agents agents_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agents
    ADD CONSTRAINT agents_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: agents_tags agents_tags_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agents_tags
    ADD CONSTRAINT agents_tags_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id);


--
-- Name: archives_agents archives_agents_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.archives_agents
    ADD CONSTRAINT archives_agents_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: archives_agents archives_agents_archive_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.archives_agents
    ADD CONSTRAINT archives_agents_archive_id_fkey FOREIGN KEY (archive_id) REFERENCES public.archives(id) ON DELETE CASCADE;


--
-- Name: archives archives_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.archives
    ADD CONSTRAINT archives_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: block_history block_history_block_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.block_history
    ADD CONSTRAINT block_history_block_id_fkey FOREIGN KEY (block_id) REFERENCES public.block(id) ON DELETE CASCADE;


--
-- Name: block_history block_history_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.block_history
    ADD CONSTRAINT block_history_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: block block_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.block
    ADD CONSTRAINT block_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: blocks_agents blocks_agents_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_agents
    ADD CONSTRAINT blocks_agents_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: blocks_conversations blocks_conversations_block_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_conversations
    ADD CONSTRAINT blocks_conversations_block_id_fkey FOREIGN KEY (block_id) REFERENCES public.block(id) ON DELETE CASCADE;


--
-- Name: blocks_conversations blocks_conversations_conversation_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_conversations
    ADD CONSTRAINT blocks_conversations_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES public.conversations(id) ON DELETE CASCADE;


--
-- Name: blocks_tags blocks_tags_block_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_tags
    ADD CONSTRAINT blocks_tags_block_id_fkey FOREIGN KEY (block_id) REFERENCES public.block(id);


--
-- Name: blocks_tags blocks_tags_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_tags
    ADD CONSTRAINT blocks_tags_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: conversation_messages conversation_messages_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_messages
    ADD CONSTRAINT conversation_messages_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: conversation_messages conversation_messages_conversation_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_messages
    ADD CONSTRAINT conversation_messages_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES public.conversations(id) ON DELETE CASCADE;


--
-- Name: conversation_messages conversation_messages_message_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_messages
    ADD CONSTRAINT conversation_messages_message_id_fkey FOREIGN KEY (message_id) REFERENCES public.messages(id) ON DELETE CASCADE;


--
-- Name: conversation_messages conversation_messages_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_messages
    ADD CONSTRAINT conversation_messages_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: conversations conversations_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: conversations conversations_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: file_contents file_contents_file_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.file_contents
    ADD CONSTRAINT file_contents_file_id_fkey FOREIGN KEY (file_id) REFERENCES public.files(id) ON DELETE CASCADE;


--
-- Name: files_agents files_agents_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.files_agents
    ADD CONSTRAINT files_agents_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: files_agents files_agents_file_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.files_agents
    ADD CONSTRAINT files_agents_file_id_fkey FOREIGN KEY (file_id) REFERENCES public.files(id) ON DELETE CASCADE;


--
-- Name: files_agents files_agents_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.files_agents
    ADD CONSTRAINT files_agents_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: files_agents files_agents_source_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.files_agents
    ADD CONSTRAINT files_agents_source_id_fkey FOREIGN KEY (source_id) REFERENCES public.sources(id) ON DELETE CASCADE;


--
-- Name: files files_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.files
    ADD CONSTRAINT files_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: files files_source_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.files
    ADD CONSTRAINT files_source_id_fkey FOREIGN KEY (source_id) REFERENCES public.sources(id) ON DELETE CASCADE;


--
-- Name: block fk_block_current_history_entry; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.block
    ADD CONSTRAINT fk_block_current_history_entry FOREIGN KEY (current_history_entry_id) REFERENCES public.block_history(id);


--
-- Name: blocks_agents fk_block_id_label; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blocks_agents
    ADD CONSTRAINT fk_block_id_label FOREIGN KEY (block_id, block_label) REFERENCES public.block(id, label) ON UPDATE CASCADE ON DELETE CASCADE DEFERRABLE;


--
-- Name: jobs fk_jobs_organization_id; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT fk_jobs_organization_id FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: messages fk_messages_run_id; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT fk_messages_run_id FOREIGN KEY (run_id) REFERENCES public.runs(id) ON DELETE SET NULL;


--
-- Name: messages fk_messages_step_id; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT fk_messages_step_id FOREIGN KEY (step_id) REFERENCES public.steps(id) ON DELETE SET NULL;


--
-- Name: step_metrics fk_step_metrics_run_id; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.step_metrics
    ADD CONSTRAINT fk_step_metrics_run_id FOREIGN KEY (run_id) REFERENCES public.runs(id) ON DELETE SET NULL;


--
-- Name: steps fk_steps_organization_id; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.steps
    ADD CONSTRAINT fk_steps_organization_id FOREIGN KEY (provider_id) REFERENCES public.providers(id) ON DELETE RESTRICT;


--
-- Name: steps fk_steps_provider_id; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.steps
    ADD CONSTRAINT fk_steps_provider_id FOREIGN KEY (organization_id) REFERENCES public.organizations(id) ON DELETE RESTRICT;


--
-- Name: steps fk_steps_run_id; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.steps
    ADD CONSTRAINT fk_steps_run_id FOREIGN KEY (run_id) REFERENCES public.runs(id) ON DELETE SET NULL;


--
-- Name: groups_agents groups_agents_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups_agents
    ADD CONSTRAINT groups_agents_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: groups_agents groups_agents_group_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups_agents
    ADD CONSTRAINT groups_agents_group_id_fkey FOREIGN KEY (group_id) REFERENCES public.groups(id) ON DELETE CASCADE;


--
-- Name: groups_blocks groups_blocks_block_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups_blocks
    ADD CONSTRAINT groups_blocks_block_id_fkey FOREIGN KEY (block_id) REFERENCES public.block(id) ON DELETE CASCADE;


--
-- Name: groups_blocks groups_blocks_group_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups_blocks
    ADD CONSTRAINT groups_blocks_group_id_fkey FOREIGN KEY (group_id) REFERENCES public.groups(id) ON DELETE CASCADE;


--
-- Name: groups groups_manager_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups
    ADD CONSTRAINT groups_manager_agent_id_fkey FOREIGN KEY (manager_agent_id) REFERENCES public.agents(id) ON DELETE RESTRICT;


--
-- Name: groups groups_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups
    ADD CONSTRAINT groups_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: identities_agents identities_agents_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.identities_agents
    ADD CONSTRAINT identities_agents_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: identities_agents identities_agents_identity_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.identities_agents
    ADD CONSTRAINT identities_agents_identity_id_fkey FOREIGN KEY (identity_id) REFERENCES public.identities(id) ON DELETE CASCADE;


--
-- Name: identities_blocks identities_blocks_block_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.identities_blocks
    ADD CONSTRAINT identities_blocks_block_id_fkey FOREIGN KEY (block_id) REFERENCES public.block(id) ON DELETE CASCADE;


--
-- Name: identities_blocks identities_blocks_identity_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.identities_blocks
    ADD CONSTRAINT identities_blocks_identity_id_fkey FOREIGN KEY (identity_id) REFERENCES public.identities(id) ON DELETE CASCADE;


--
-- Name: identities identities_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.identities
    ADD CONSTRAINT identities_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: jobs jobs_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);


--
-- Name: llm_batch_items llm_batch_items_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_batch_items
    ADD CONSTRAINT llm_batch_items_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: llm_batch_items llm_batch_items_llm_batch_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_batch_items
    ADD CONSTRAINT llm_batch_items_llm_batch_id_fkey FOREIGN KEY (llm_batch_id) REFERENCES public.llm_batch_job(id) ON DELETE CASCADE;


--
-- Name: llm_batch_items llm_batch_items_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_batch_items
    ADD CONSTRAINT llm_batch_items_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: llm_batch_job llm_batch_job_letta_batch_job_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_batch_job
    ADD CONSTRAINT llm_batch_job_letta_batch_job_id_fkey FOREIGN KEY (letta_batch_job_id) REFERENCES public.jobs(id) ON DELETE CASCADE;


--
-- Name: llm_batch_job llm_batch_job_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_batch_job
    ADD CONSTRAINT llm_batch_job_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: mcp_oauth mcp_oauth_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mcp_oauth
    ADD CONSTRAINT mcp_oauth_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: mcp_oauth mcp_oauth_server_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mcp_oauth
    ADD CONSTRAINT mcp_oauth_server_id_fkey FOREIGN KEY (server_id) REFERENCES public.mcp_server(id) ON DELETE CASCADE;


--
-- Name: mcp_oauth mcp_oauth_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mcp_oauth
    ADD CONSTRAINT mcp_oauth_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);


--
-- Name: mcp_server mcp_server_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mcp_server
    ADD CONSTRAINT mcp_server_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: mcp_tools mcp_tools_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mcp_tools
    ADD CONSTRAINT mcp_tools_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: messages messages_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: messages messages_conversation_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES public.conversations(id) ON DELETE SET NULL;


--
-- Name: messages messages_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: passage_tags passage_tags_archive_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.passage_tags
    ADD CONSTRAINT passage_tags_archive_id_fkey FOREIGN KEY (archive_id) REFERENCES public.archives(id) ON DELETE CASCADE;


--
-- Name: passage_tags passage_tags_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.passage_tags
    ADD CONSTRAINT passage_tags_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: passage_tags passage_tags_passage_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.passage_tags
    ADD CONSTRAINT passage_tags_passage_id_fkey FOREIGN KEY (passage_id) REFERENCES public.archival_passages(id) ON DELETE CASCADE;


--
-- Name: provider_models provider_models_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.provider_models
    ADD CONSTRAINT provider_models_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id) ON DELETE CASCADE;


--
-- Name: provider_models provider_models_provider_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.provider_models
    ADD CONSTRAINT provider_models_provider_id_fkey FOREIGN KEY (provider_id) REFERENCES public.providers(id) ON DELETE CASCADE;


--
-- Name: provider_trace_metadata provider_trace_metadata_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.provider_trace_metadata
    ADD CONSTRAINT provider_trace_metadata_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: provider_traces provider_traces_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.provider_traces
    ADD CONSTRAINT provider_traces_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: providers providers_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.providers
    ADD CONSTRAINT providers_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: run_metrics run_metrics_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_metrics
    ADD CONSTRAINT run_metrics_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: run_metrics run_metrics_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_metrics
    ADD CONSTRAINT run_metrics_id_fkey FOREIGN KEY (id) REFERENCES public.runs(id) ON DELETE CASCADE;


--
-- Name: run_metrics run_metrics_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_metrics
    ADD CONSTRAINT run_metrics_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: runs runs_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id);


--
-- Name: runs runs_conversation_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES public.conversations(id) ON DELETE SET NULL;


--
-- Name: runs runs_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: sandbox_configs sandbox_configs_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sandbox_configs
    ADD CONSTRAINT sandbox_configs_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: sandbox_environment_variables sandbox_environment_variables_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sandbox_environment_variables
    ADD CONSTRAINT sandbox_environment_variables_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: sandbox_environment_variables sandbox_environment_variables_sandbox_config_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sandbox_environment_variables
    ADD CONSTRAINT sandbox_environment_variables_sandbox_config_id_fkey FOREIGN KEY (sandbox_config_id) REFERENCES public.sandbox_configs(id);


--
-- Name: source_passages source_passages_file_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.source_passages
    ADD CONSTRAINT source_passages_file_id_fkey FOREIGN KEY (file_id) REFERENCES public.files(id) ON DELETE CASCADE;


--
-- Name: source_passages source_passages_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.source_passages
    ADD CONSTRAINT source_passages_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: source_passages source_passages_source_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.source_passages
    ADD CONSTRAINT source_passages_source_id_fkey FOREIGN KEY (source_id) REFERENCES public.sources(id) ON DELETE CASCADE;


--
-- Name: sources_agents sources_agents_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sources_agents
    ADD CONSTRAINT sources_agents_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: sources_agents sources_agents_source_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sources_agents
    ADD CONSTRAINT sources_agents_source_id_fkey FOREIGN KEY (source_id) REFERENCES public.sources(id) ON DELETE CASCADE;


--
-- Name: sources sources_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sources
    ADD CONSTRAINT sources_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: step_metrics step_metrics_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.step_metrics
    ADD CONSTRAINT step_metrics_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: step_metrics step_metrics_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.step_metrics
    ADD CONSTRAINT step_metrics_id_fkey FOREIGN KEY (id) REFERENCES public.steps(id) ON DELETE CASCADE;


--
-- Name: step_metrics step_metrics_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.step_metrics
    ADD CONSTRAINT step_metrics_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id) ON DELETE RESTRICT;


--
-- Name: step_metrics step_metrics_provider_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.step_metrics
    ADD CONSTRAINT step_metrics_provider_id_fkey FOREIGN KEY (provider_id) REFERENCES public.providers(id) ON DELETE RESTRICT;


--
-- Name: tools_agents tools_agents_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tools_agents
    ADD CONSTRAINT tools_agents_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;


--
-- Name: tools_agents tools_agents_tool_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tools_agents
    ADD CONSTRAINT tools_agents_tool_id_fkey FOREIGN KEY (tool_id) REFERENCES public.tools(id) ON DELETE CASCADE;


--
-- Name: tools tools_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tools
    ADD CONSTRAINT tools_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: users users_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- PostgreSQL database dump complete
--

\unrestrict dcUyA8g6tdVgrJy8ntLtTNmZfde5WQOeoR5FLfYV6baVhqICg9v7Jec09MMWc02

--
-- PostgreSQL database dump
--

\restrict Qma2MEhcGl2XohkAoN66idD1RD0ug73zz8znq7u9Wkh316Op6KEhe8pWOMBVMwS

-- Dumped from database version 16.14
-- Dumped by pg_dump version 16.14

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.alembic_version (version_num) FROM stdin;
1c28e167b74f
\.


--
-- PostgreSQL database dump complete
--

\unrestrict Qma2MEhcGl2XohkAoN66idD1RD0ug73zz8znq7u9Wkh316Op6KEhe8pWOMBVMwS

