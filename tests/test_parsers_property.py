"""Property tests of the parsers that read user text: whatever is typed or stored, the result
is a valid value or the project's user error with a one-line message, never another exception.
"""

from __future__ import annotations

import math
import string
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import device_profiles
import search_spaces as ss
from explorer.budget import LIMIT_RANGE, parse_budget
from explorer.checkpoints import load_checkpoint, save_checkpoint
from explorer.data import load_dataset
from explorer.errors import CheckpointError, UsageError

# the errors the command line turns into one line and exit code 2
USER_ERRORS = (UsageError, CheckpointError, ss.ConfigError, device_profiles.DeviceError)
FAST = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def one_line_user_error(call) -> object | None:
    """``call()``'s value, or None after checking its exception is a one-line user error."""
    try:
        return call()
    except USER_ERRORS as exc:
        text = str(exc)
        assert text and "\n" not in text, repr(text)
        return None


# text that looks like what people type: digits, units, separators, and some noise
_PIECES = st.sampled_from(
    ["1", "9", "0", ".", "e", "E", "-", "+", "999", "1e999", "1e-320", "nan", "inf", " ", "@",
     "k", "M", "G", "T", "Ki", "Mi", "flops", "macs", "params", "B", "MB", "ms", "s", "us",
     "rpi4", "=", ",", ":", "[", "]", "{", "x", "%", "µ"]
)  # fmt: skip
TYPED = st.one_of(st.lists(_PIECES, max_size=8).map("".join), st.text(max_size=30))


@FAST
@given(TYPED)
def test_budget_text(text: str) -> None:
    budget = one_line_user_error(lambda: parse_budget(text))
    if budget is not None:
        low, high = LIMIT_RANGE[budget.metric]
        assert math.isfinite(budget.limit) and low <= budget.limit <= high


@FAST
@given(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["flops", "ms", "MB"]))
def test_budget_numbers(number: float, unit: str) -> None:
    budget = one_line_user_error(lambda: parse_budget(f"{number!r}{unit}"))
    if budget is not None:
        assert math.isfinite(budget.limit) and budget.limit > 0


_VALUES = st.one_of(
    st.integers(-(10**6), 10**7).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", "[16,32]", "[]", "[[1]]", "null", '"x"', "{}", "1e999"]),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),  # deep nesting
    st.text(alphabet=string.printable, max_size=10),
)


@FAST
@given(
    st.sampled_from(["ding2025", "lu", "yang", "kumar2025", "ishtiaq", "hybrid", "nosuch"]),
    st.lists(
        st.tuples(
            st.sampled_from(["frames", "width_mult", "dropout", "num_classes", "fbp_dim", "zz"]),
            _VALUES,
        ),
        max_size=3,
    ),
)
def test_model_spec_and_overrides(head: str, overrides: list[tuple[str, str]]) -> None:
    text = head + (":" + ",".join(f"{k}={v}" for k, v in overrides) if overrides else "")
    one_line_user_error(lambda: ss.config_from_string(text))


_TOML_LINES = st.sampled_from(
    ['name = "Board"', 'kind = "cpu"', 'kind = "tpu"', "bandwidth_gb_s = 12.8",
     "bandwidth_gb_s = 0", "bandwidth_gb_s = 1e-320", "bandwidth_gb_s = inf",
     "bandwidth_gb_s = nan", 'bandwidth_gb_s = "fast"', "memory_gb = -4", "format_version = -5",
     "[peak_gflops]", "fp32 = 30.0", "fp32 = 1e308", "fp16 = -1", "[calibration]",
     "compute_fraction = 0.5", "bandwidth_fraction = 2", 'aliases = ["a b"]', 'key = "UPPER"',
     "x = [[[[[[[[1]]]]]]]]", "a = " + "[" * 2000 + "]" * 2000, "= broken", '[targets."x"]']
)  # fmt: skip


@FAST
@given(st.lists(_TOML_LINES, max_size=9))
def test_device_toml(tmp_path_factory, lines: list[str]) -> None:
    path = tmp_path_factory.mktemp("dev") / "board.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    profile = one_line_user_error(lambda: device_profiles.load_file(path))
    if profile is not None:
        assert profile.bandwidth_gb_s > 0 and math.isfinite(profile.ridge_flops_per_byte)


@pytest.fixture(scope="module")
def ckpt_data(tmp_path_factory) -> dict:
    config = ss.config_from_string("ding:conv_channels=[4,8],audio_channels=[4,8]")
    path = tmp_path_factory.mktemp("ck") / "m.pt"
    save_checkpoint(path, ss.build(config))
    return torch.load(path, weights_only=True)


_META = st.one_of(
    st.none(),
    st.integers(-5, 10**15),
    st.text(max_size=8),
    st.lists(st.one_of(st.integers(-3, 10**9), st.text(max_size=3)), max_size=4),
    st.dictionaries(st.text(max_size=5), st.lists(st.integers(-2, 10**6), max_size=3), max_size=3),
)


@FAST
@given(
    st.sampled_from(
        ["shapes", "class_names", "config", "input_spec", "format_version", "family", "metrics"]
    ),
    _META,
)
def test_checkpoint_metadata(ckpt_data, tmp_path_factory, key: str, value) -> None:
    data = dict(ckpt_data)
    data[key] = value
    path = Path(tmp_path_factory.mktemp("bad")) / "m.pt"
    torch.save(data, path)
    ckpt = one_line_user_error(lambda: load_checkpoint(path))
    if ckpt is not None:
        assert all(isinstance(n, str) for n in ckpt.class_names)
        for name, shape in ckpt.shapes.items():
            assert tuple(ckpt.state_dict[name].shape) == tuple(shape)


@FAST
@given(
    st.one_of(
        st.lists(
            st.tuples(
                st.sampled_from(["actors", "clips_per_class", "clip_seconds", "difficulty", "q"]),
                _VALUES,
            ),
            max_size=3,
        ).map(lambda kv: "synthetic:" + ",".join(f"{k}={v}" for k, v in kv)),
        st.sampled_from(["ravdess:", "cremad:/no/such/dir", "nosuch:x", "", "synthetic:="]),
        st.text(max_size=20),
    )
)
def test_dataset_spec(text: str) -> None:
    one_line_user_error(lambda: load_dataset(text))
