"""Token normalisation: every convention in the field to one canonical Usage, decision recorded."""

from __future__ import annotations

from auditor.usage import Dialect, normalize, reinterpret

ANTHROPIC_INCL = {
    "gen_ai.usage.input_tokens": 55_200,
    "gen_ai.usage.cache_read.input_tokens": 48_000,
    "gen_ai.usage.cache_creation.input_tokens": 6_000,
    "gen_ai.usage.output_tokens": 850,
}


def test_openai_semconv_counts_cached_tokens_inside_input():
    u = normalize(
        {"gen_ai.usage.input_tokens": 12_000, "gen_ai.usage.cache_read.input_tokens": 8_192, "gen_ai.usage.output_tokens": 400},
        "opentelemetry.instrumentation.openai_v2", provider="openai", model="gpt-4o",
    )
    assert (u.input, u.cache_read, u.cache_write_total, u.output) == (3_808, 8_192, 0, 400)
    assert (u.convention, u.ambiguous, u.source) == ("including", False, "semconv")
    assert u.basis == "semconv convention: input includes cache tokens"


def test_cache_larger_than_input_is_the_excluding_convention():
    u = normalize(
        {"gen_ai.usage.input_tokens": 800, "gen_ai.usage.cache_read.input_tokens": 30_000,
         "gen_ai.usage.cache_creation.input_tokens": 2_000, "gen_ai.usage.output_tokens": 500},
        "research_assistant.llm_client", provider="anthropic", model="claude-sonnet-4-5",
    )
    assert (u.input, u.cache_read, u.cache_write, u.convention, u.ambiguous) == (800, 30_000, 2_000, "excluding", False)
    assert u.basis == "evidence: cache tokens exceed input tokens"


def test_anthropic_with_cache_within_input_and_no_dialect_is_ambiguous():
    u = normalize(ANTHROPIC_INCL, "opentelemetry.instrumentation.anthropic", provider="anthropic", model="claude-sonnet-4-5")
    assert (u.input, u.convention, u.ambiguous) == (1_200, "including", True)
    alt = reinterpret(u, "excluding")
    assert (alt.input, alt.cache_read, alt.cache_write, alt.convention) == (55_200, 48_000, 6_000, "excluding")


def test_claude_model_name_alone_makes_it_ambiguous_and_openai_never_is():
    assert normalize(ANTHROPIC_INCL, "x", provider="aws.bedrock", model="anthropic.claude-3-5-sonnet").ambiguous
    assert normalize(ANTHROPIC_INCL, "x", provider=None, model="claude-3-5-haiku").ambiguous
    assert not normalize(ANTHROPIC_INCL, "x", provider="openai", model="gpt-4o").ambiguous


def test_dialect_convention_by_scope_prefix_decides():
    d = Dialect.from_mapping({"convention": {"opentelemetry.instrumentation": "including", "opentelemetry.instrumentation.anthropic": "excluding"}})
    u = normalize(ANTHROPIC_INCL, "opentelemetry.instrumentation.anthropic", d, "anthropic", "claude-sonnet-4-5")
    assert (u.input, u.convention, u.ambiguous) == (55_200, "excluding", False)  # the longest prefix wins
    assert u.basis == "dialect: scope 'opentelemetry.instrumentation.anthropic' is excluding"
    u = normalize(ANTHROPIC_INCL, "opentelemetry.instrumentation.bedrock", d, "anthropic", "claude-sonnet-4-5")
    assert (u.input, u.convention, u.ambiguous) == (1_200, "including", False)


def test_dialect_including_contradicted_by_the_counts_is_read_as_excluding():
    d = Dialect.from_mapping({"convention": {"acme": "including"}})
    u = normalize({"gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_read.input_tokens": 50}, "acme.client", d)
    assert (u.input, u.cache_read, u.convention) == (10, 50, "excluding")
    assert "exceed input" in u.basis


def test_both_cache_write_names_and_legacy_names_are_read():
    new = normalize({"gen_ai.usage.input_tokens": 100, "gen_ai.usage.cache_write.input_tokens": 40})
    assert (new.input, new.cache_write) == (60, 40)
    legacy = normalize({
        "gen_ai.usage.prompt_tokens": 100, "gen_ai.usage.completion_tokens": 7,
        "gen_ai.usage.cache_read_input_tokens": 30, "gen_ai.usage.cache_creation_input_tokens": 20,
        "llm.usage.reasoning_tokens": 3, "llm.usage.total_tokens": 107,
    })
    assert (legacy.input, legacy.cache_read, legacy.cache_write, legacy.output, legacy.reasoning, legacy.source) == (50, 30, 20, 7, 3, "legacy")


def test_openinference_and_traceai_names():
    oi = normalize({
        "llm.token_count.prompt": 5_000, "llm.token_count.completion": 100,
        "llm.token_count.prompt_details.cache_read": 4_000, "llm.token_count.prompt_details.cache_write": 500,
        "llm.token_count.completion_details.reasoning": 60,
    }, "openinference.instrumentation.anthropic", provider="anthropic", model="claude-sonnet-4-5")
    # OpenInference defines prompt as cache-inclusive: not ambiguous even for Anthropic.
    assert (oi.input, oi.cache_read, oi.cache_write, oi.reasoning, oi.convention, oi.ambiguous) == (500, 4_000, 500, 60, "including", False)
    ta = normalize({"gen_ai.usage.input_tokens": 900, "gen_ai.usage.cache_read_tokens": 300,
                    "gen_ai.usage.input_tokens.cache_write": 100, "gen_ai.usage.output_tokens": 9})
    assert (ta.input, ta.cache_read, ta.cache_write, ta.output) == (500, 300, 100, 9)


def test_litellm_usage_object_python_repr():
    repr_str = str({
        "completion_tokens": 120, "prompt_tokens": 10_500, "total_tokens": 10_620,
        "completion_tokens_details": {"reasoning_tokens": 0},
        "prompt_tokens_details": {"cached_tokens": 9_000, "cache_creation_tokens": 1_000},
        "cache_creation_input_tokens": 1_000, "cache_read_input_tokens": 9_000,
    })
    u = normalize({"gen_ai.usage.output_tokens": 120, "metadata.usage_object": repr_str}, "litellm", provider="anthropic", model="claude-sonnet-4-5")
    assert (u.input, u.cache_read, u.cache_write, u.output, u.convention, u.ambiguous, u.source) == (500, 9_000, 1_000, 120, "including", False, "litellm")


def test_dialect_token_names_come_after_the_builtins_and_split_cache_ttl():
    d = Dialect.from_mapping({
        "tokens": {"input": ["input_tokens"], "output": ["output_tokens"], "cache_read": ["cache_read_tokens"],
                   "cache_write": ["cache_creation_tokens"], "cache_write_1h": ["cache_1h_tokens"]},
        "convention": {"com.anthropic.claude_code": "excluding"},
    })
    attrs = {"input_tokens": "12", "output_tokens": "340", "cache_read_tokens": "20000", "cache_creation_tokens": "3000", "cache_1h_tokens": 1000}
    u = normalize(attrs, "com.anthropic.claude_code.tracing", d, "anthropic", "claude-opus-4-1")
    assert (u.input, u.cache_read, u.cache_write, u.cache_write_1h, u.output, u.convention) == (12, 20_000, 2_000, 1_000, 340, "excluding")
    # a built-in name wins over a dialect name for the same field
    u2 = normalize({**attrs, "gen_ai.usage.output_tokens": 7}, "com.anthropic.claude_code.tracing", d)
    assert u2.output == 7


def test_only_a_total_cannot_be_priced_and_says_so():
    u = normalize({"llm.usage.total_tokens": 1_234})
    assert (u.convention, u.total, u.basis) == ("none", 1_234, "only a total token count")
    assert normalize({}).basis == "no token counts"
