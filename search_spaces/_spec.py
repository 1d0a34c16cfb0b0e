"""What a model consumes (``InputSpec``), the search-space vocabulary, and config validation.

Kept free of torch model code so data loading and the CLI can read specs cheaply.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AUDIO_KINDS",
    "Choice",
    "ConfigError",
    "FloatRange",
    "InputSpec",
    "IntRange",
    "check_choice",
    "check_range",
]

# Audio feature kinds a model may ask for, and the per-sample shape each implies:
#   mfcc_mean      (n_mfcc,)            MFCCs averaged over time (ding, lu)
#   mfcc_seq       (n_mfcc, steps)      MFCC sequence
#   frft_mfcc_seq  (n_mfcc, steps)      MFCCs of the fractional-Fourier-enhanced spectrum (yang)
#   logmel         (n_mels, steps)      log-mel spectrogram (ishtiaq, kumar)
AUDIO_KINDS = ("mfcc_mean", "mfcc_seq", "frft_mfcc_seq", "logmel")


class ConfigError(ValueError):
    """A config field is unknown, out of range, or inconsistent with another field."""


def check_range(
    owner: str, name: str, value: Any, low: float, high: float, *, integer: bool = True
) -> None:
    """Raise ``ConfigError`` unless ``low <= value <= high`` (and an int when ``integer``)."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) and not isinstance(value, bool)
    if not integer:
        ok_type = ok_type or isinstance(value, float)
    if (
        not ok_type
        or not (low <= value <= high)
        or (isinstance(value, float) and math.isnan(value))
    ):
        raise ConfigError(f"{owner}.{name}={value!r} is invalid: must be {kind} in [{low}, {high}]")


def check_choice(owner: str, name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ``ConfigError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(
            f"{owner}.{name}={value!r} is invalid: must be one of {', '.join(map(repr, choices))}"
        )


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """What a model's ``forward(audio, video, text=None)`` consumes, per sample.

    Shapes with the batch dimension ``B`` in front:
      audio: ``(B, *audio_shape)``; see ``AUDIO_KINDS`` for what each kind's shape means.
      video: ``(B, frames, channels, height, width)``; float in [0, 1] (or normalised).
      text:  ``(B, text_length)`` int64 token ids, only when ``text_length > 0``.

    The audio front-end parameters (sample rate, clip length, FFT size, hop) tell the data
    pipeline how to compute features so that they have ``audio_shape``.
    """

    audio_kind: str
    audio_shape: tuple[int, ...]
    frames: int
    channels: int
    height: int
    width: int
    num_classes: int = 8
    sample_rate_hz: int = 16000
    clip_seconds: float = 3.0
    n_fft: int = 2048
    hop_length: int = 512
    frft_order: float = 1.0
    text_length: int = 0
    vocab_size: int = 0

    def __post_init__(self) -> None:
        check_choice("InputSpec", "audio_kind", self.audio_kind, AUDIO_KINDS)
        want = 1 if self.audio_kind == "mfcc_mean" else 2
        if len(self.audio_shape) != want or any(int(d) < 1 for d in self.audio_shape):
            raise ConfigError(
                f"InputSpec.audio_shape={self.audio_shape!r} is invalid for audio_kind="
                f"{self.audio_kind!r}: needs {want} positive dimension(s)"
            )
        object.__setattr__(self, "audio_shape", tuple(int(d) for d in self.audio_shape))
        check_range("InputSpec", "frames", self.frames, 1, 10_000)
        check_choice("InputSpec", "channels", self.channels, (1, 3))
        check_range("InputSpec", "height", self.height, 1, 4096)
        check_range("InputSpec", "width", self.width, 1, 4096)
        check_range("InputSpec", "num_classes", self.num_classes, 2, 10_000)
        check_range("InputSpec", "text_length", self.text_length, 0, 100_000)

    @property
    def video_shape(self) -> tuple[int, int, int, int]:
        """Per-sample video shape ``(frames, channels, height, width)``."""
        return (self.frames, self.channels, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["audio_shape"] = list(self.audio_shape)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputSpec:
        """Inverse of ``to_dict``; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"InputSpec has no field(s) {unknown}; valid: {sorted(names)}")
        kwargs = dict(data)
        kwargs["audio_shape"] = tuple(kwargs["audio_shape"])
        return cls(**kwargs)


# --- search-space vocabulary -------------------------------------------------------------
# A family's SPACE is a plain dict: field name -> Choice | IntRange | FloatRange. A parameter
# with ``when`` is only sampled when every named field has one of the listed values; otherwise
# the Config default is used. A parameter with ``at_most`` names an earlier numeric field that
# bounds it (a Tucker rank and its mode's size): a larger draw is lowered to that field's value
# (``bounded``) instead of being rejected, so dependent knobs do not waste samples or trials.
# Fields are sampled in dict order, so ``when`` and ``at_most`` may only name earlier fields.


@dataclass(frozen=True)
class Choice:
    """One of a fixed list of values (any JSON-safe values, tuples included)."""

    values: tuple[Any, ...]
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    at_most: str | None = None

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.values)

    def describe(self) -> str:
        bound = f" (at most {self.at_most})" if self.at_most else ""
        return "{" + ", ".join(map(repr, self.values)) + "}" + bound


@dataclass(frozen=True)
class IntRange:
    """An integer in ``[low, high]`` on a grid of ``step``; ``log`` samples log-uniformly."""

    low: int
    high: int
    step: int = 1
    log: bool = False
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    at_most: str | None = None

    def sample(self, rng: random.Random) -> int:
        if self.log:
            v = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
            v = self.low + round((v - self.low) / self.step) * self.step
            return int(min(max(v, self.low), self.high))
        return rng.randrange(self.low, self.high + 1, self.step)

    def describe(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        bound = f" (at most {self.at_most})" if self.at_most else ""
        return f"[{self.low}, {self.high}]{step}{' log' if self.log else ''}{bound}"


@dataclass(frozen=True)
class FloatRange:
    """A float in ``[low, high]``; ``log`` samples log-uniformly."""

    low: float
    high: float
    log: bool = False
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def sample(self, rng: random.Random) -> float:
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def describe(self) -> str:
        return f"[{self.low}, {self.high}]{' log' if self.log else ''}"


Param = Choice | IntRange | FloatRange


def active(param: Param, values: Mapping[str, Any]) -> bool:
    """Whether ``param``'s conditions hold for the already chosen ``values``."""
    return all(values.get(k) in allowed for k, allowed in param.when.items())


def bounded(param: Param, value: Any, values: Mapping[str, Any]) -> Any:
    """``value`` lowered to the field named by ``param.at_most`` when that field was chosen."""
    name = getattr(param, "at_most", None)
    if name is None or name not in values:
        return value
    return min(value, values[name])


def unknown_field_error(owner: str, name: str, valid: Sequence[str]) -> ConfigError:
    """The error for a field that does not exist, with the closest valid name."""
    close = difflib.get_close_matches(name, list(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"{owner} has no field {name!r}{hint}; valid fields: {', '.join(valid)}")
