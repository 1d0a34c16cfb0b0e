"""Budget parsing: every accepted form, forgiving case and spacing, one-line errors."""

from __future__ import annotations

import pytest

from explorer.budget import (
    BUDGET_FORMS,
    Budget,
    budget_usage,
    budgets_to_texts,
    check_budgets,
    parse_budget,
)
from explorer.errors import UsageError


@pytest.mark.parametrize(
    ("text", "metric", "limit", "device"),
    [
        ("1e9flops", "flops", 1e9, None),
        ("500Mflops", "flops", 500e6, None),
        ("1 GFLOPs", "flops", 1e9, None),
        ("2.5e8 FLOP", "flops", 2.5e8, None),
        ("300M macs", "macs", 300e6, None),
        ("300m MACs", "macs", 300e6, None),
        ("1.5G mac", "macs", 1.5e9, None),
        ("2M params", "params", 2e6, None),
        ("250k parameters", "params", 250e3, None),
        ("4MB", "weight_bytes", 4e6, None),
        ("4 mb", "weight_bytes", 4e6, None),
        ("512 kB", "weight_bytes", 512e3, None),
        ("1MiB", "weight_bytes", 2**20, None),
        ("100 bytes", "weight_bytes", 100, None),
        ("20ms", "latency_ms", 20.0, None),
        ("20 MS", "latency_ms", 20.0, None),
        ("0.5s", "latency_ms", 500.0, None),
        ("800us", "latency_ms", 0.8, None),
        ("20ms@rpi4", "latency_ms", 20.0, "rpi4"),
        (" 20 ms @ rpi4 ", "latency_ms", 20.0, "rpi4"),
    ],
)
def test_accepted_forms(text: str, metric: str, limit: float, device: str | None) -> None:
    budget = parse_budget(text)
    assert budget.metric == metric
    assert budget.limit == pytest.approx(limit)
    assert budget.device == device
    # the stored text re-parses to the same budget (studies store budgets as text)
    assert parse_budget(budgets_to_texts([budget])[0]) == budget


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1e9",
        "flops",
        "1e9 furlongs",
        "20ms@",
        "2M params@rpi4",
        "-3ms",
        "0flops",
        "4 MBB",
        "1e9 flops flops",
        "abc@rpi4",
    ],
)
def test_rejected_forms_give_one_line_listing_the_forms(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_budget(text)
    message = str(info.value)
    assert "\n" not in message
    assert BUDGET_FORMS in message
    assert repr(text.strip()) in message or text.strip() == ""


def test_budget_usage_is_value_over_limit() -> None:
    budgets = [
        parse_budget("1e9flops"),
        parse_budget("2M params"),
        parse_budget("20ms@rpi4"),
        parse_budget("10ms"),
    ]
    totals = {"flops": 5e8, "macs": 2.5e8, "params": 3e6, "weight_bytes": 12e6}
    usage = budget_usage(
        budgets, totals=totals, latency_ms={"rpi4": 30.0, "orin-nano": 1.0}, device="orin-nano"
    )
    assert usage == pytest.approx((0.5, 1.5, 1.5, 0.1))
    check = check_budgets(
        budgets, totals=totals, latency_ms={"rpi4": 30.0, "orin-nano": 1.0}, device="orin-nano"
    )
    assert check.usage == usage and not check.feasible
    assert check.by_label == pytest.approx(
        {"flops": 0.5, "params": 1.5, "latency_ms@rpi4": 1.5, "latency_ms": 0.1}
    )
    assert check.reason == "over budget: params 1.50x the limit, latency_ms@rpi4 1.50x the limit"
    fits = check_budgets(budgets[:1], totals=totals, latency_ms={}, device="orin-nano")
    assert fits.feasible and fits.reason == ""


def test_budget_rejects_device_on_non_latency_metric() -> None:
    with pytest.raises(UsageError):
        Budget(metric="flops", limit=1.0, device="rpi4")
