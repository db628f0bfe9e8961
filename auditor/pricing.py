"""Price an LLM call with the genai-prices data, offline.

genai-prices counts ``input_tokens`` INCLUDING cache tokens, so a canonical Usage (whose
``input`` is uncached) is converted back before the lookup.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import genai_prices

from auditor.model import LlmCall


class Pricer:
    """Prices calls; one instance per audit (it caches lookups)."""

    def __init__(self, schema=None):
        self._schema = schema

    def price(self, call: LlmCall) -> tuple[Decimal | None, str]:
        if not call.model:
            return None, "no model on the span"
        u = call.usage
        when = datetime.fromtimestamp(call.start_ns / 1e9, tz=timezone.utc) if call.start_ns else None
        try:
            calc = genai_prices.calc_price(
                genai_prices.Usage(
                    input_tokens=u.total_input,
                    output_tokens=u.output,
                    cache_read_tokens=u.cache_read or None,
                    cache_write_tokens=u.cache_write_total or None,
                ),
                model_ref=call.model,
                provider_id=call.provider,
                genai_request_timestamp=when,
            )
        except LookupError as e:
            return None, f"no price: {e}"
        except ValueError as e:
            return None, f"cannot price: {e}"
        return calc.total_price, f"genai-prices {calc.provider.id}/{calc.model.id}"
