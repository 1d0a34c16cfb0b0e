"""Profiling models a user brings: nested-tensor transformers, RNNs called by keyword, and
inputs that do not fit the model (a one-line usage error naming the shapes)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import search_spaces as ss
from explorer.errors import UsageError
from explorer.profiling import profile_model
from explorer.profiling._recorder import _tensor_bytes


class PaddedEncoder(nn.Module):
    """A transformer encoder with a padding mask: in eval PyTorch packs it as a nested tensor."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, num_layers=2)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(x.shape[:2], dtype=torch.bool)
        mask[:, -3:] = True
        return self.head(self.enc(x, src_key_padding_mask=mask).mean(1))


class KeywordGru(nn.Module):
    def __init__(self, keyword: bool = True) -> None:
        super().__init__()
        self.keyword = keyword
        self.gru = nn.GRU(8, 16, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(input=x) if self.keyword else self.gru(x)
        return self.head(out[:, -1])


@pytest.mark.parametrize("meta", [True, False])
def test_padded_transformer_encoder_profiles(meta: bool) -> None:
    model = PaddedEncoder().eval()
    x = torch.randn(2, 10, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback from fake to real
        profile = profile_model(model, (x,), meta=meta)
    # the padded forward: 2 layers x (QKV 3*16*16 + out 16*16 + FF 2*16*32) per token, 20
    # tokens, plus the attention matmuls (2 x 10 x 10 x 16 per sequence and layer) and the head
    per_token = 3 * 16 * 16 + 16 * 16 + 2 * 16 * 32
    attention = 2 * 10 * 10 * 16
    expected = 2 * (20 * per_token + 2 * attention) + 2 * 16 * 4
    assert profile.macs == expected
    assert model.enc.use_nested_tensor  # restored


def test_nested_tensor_bytes_are_its_components() -> None:
    nt = torch.nested.nested_tensor([torch.zeros(3, 4), torch.zeros(5, 4)])
    assert _tensor_bytes(nt) == (3 + 5) * 4 * 4


def test_rnn_called_by_keyword_counts_like_positional() -> None:
    x = torch.randn(2, 10, 8)
    plain = KeywordGru(keyword=False).eval()
    keyword = KeywordGru().eval()
    keyword.load_state_dict(plain.state_dict())
    want = profile_model(plain, (x,), meta=False)
    for meta in (True, False):
        got = profile_model(keyword, (x,), meta=meta)
        assert (got.macs, got.peak_activation_bytes) == (want.macs, want.peak_activation_bytes)
    assert want.macs == 2 * 10 * 3 * 16 * (8 + 16) + 2 * 16 * 4


@pytest.mark.parametrize(
    ("inputs", "needle"),
    [
        ((torch.randn(2, 10, 5),), "shapes 2x10x5"),  # GRU input_size is 8
        ([torch.randn(2, 10, 8), torch.randn(2, 10, 8)], "takes 2 positional arguments"),
    ],
)
def test_inputs_that_do_not_fit_are_a_usage_error(inputs, needle: str, caplog) -> None:
    with pytest.raises(UsageError, match=needle) as info, warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        profile_model(KeywordGru(keyword=False).eval(), inputs, name="user")
    assert "\n" not in str(info.value)
    assert not [r for r in caplog.records if "fake_tensor" in r.name]


def test_wrong_shapes_for_a_family_model_name_the_expected_shapes() -> None:
    model = ss.build(ss.get_preset("ding2025")).eval()
    with pytest.raises(UsageError, match=r"it takes 1x40, 1x1x1x64x64 \(batch 1\)"):
        profile_model(model, (torch.randn(1, 30), torch.randn(1, 1, 1, 48, 48)), name="ding")
