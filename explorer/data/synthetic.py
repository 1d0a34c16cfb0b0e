"""The embedded synthetic audio-visual emotion data set (``--dataset synthetic``).

Nothing is stored: every clip is rendered on demand, deterministically from the seed, at the
size the model asks for (a 64x64 gray single frame is not cut out of a 224x224x90 video).

Design. Eight RAVDESS classes. Each class is a pair (face prototype, voice prototype):

    class      face  voice        face prototypes            voice prototypes
    neutral    A     a            A relaxed                  a flat, mid pitch
    calm       A     b            B smile, squint            b low, slow, soft, dark
    happy      B     c            C brows down, narrow eyes  c high, loud, fast, bright
    sad        E     b            D brows up, eyes and       d high, rising, trembling,
    angry      C     c              mouth wide open            breathy
    fearful    D     d            E inner brows up,          e low, falling, harsh
    disgust    C     e              mouth corners down
    surprised  D     c

so neutral/calm, angry/disgust and fearful/surprised are told apart only by the voice, and
calm/sad, happy/angry/surprised only by the face: a face-only or voice-only model can at best
reach 5/8 accuracy, a fused one 8/8. Emotion shows in the face (brows, eyes, mouth, the speed
of the expression's onset, blinks) and in the voice (pitch level and contour, intonation
range, energy, syllable rate, spectral tilt, jitter, breathiness). Actors differ in face
geometry, skin tone, background, voice pitch, formants and speaking rate, and each actor has
personal gains on the emotion cues, so an actor-independent split is harder than a random one.
Head motion, lighting changes, pixel noise and background noise grow with ``difficulty``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from explorer.errors import UsageError

from ._types import RAVDESS_CLASSES, ClipInfo, ClipMedia, Dataset, MediaRequest

__all__ = ["SyntheticConfig", "load_synthetic", "render_clip"]

_VERSION = 2  # bump when the renderer changes, so cached features are rebuilt

# Face prototypes: brow_raise, brow_tilt (+ = inner ends up), eye_open, mouth_curve
# (+ = smile), mouth_open, mouth_width, onset_speed (1 = ordinary).
_FACES = {
    "A": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    "B": (0.1, 0.0, -0.45, 1.0, 0.25, 0.45, 1.5),
    "C": (-0.9, -1.0, -0.5, -0.25, 0.0, -0.45, 2.0),
    "D": (1.0, 0.2, 0.9, 0.0, 1.0, -0.1, 2.5),
    "E": (0.15, 1.0, -0.35, -1.0, 0.0, -0.1, 0.8),
}
# Voice prototypes: pitch level (semitones), pitch slope over the clip (semitones),
# intonation range (semitones), energy (dB), syllable rate (x actor's), spectral tilt
# (+ = darker), jitter (semitones, fast), breathiness (noise share).
_VOICES = {
    "a": (0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.10, 0.02),
    "b": (-2.5, -1.0, 0.5, -7.0, 0.72, 0.55, 0.08, 0.10),
    "c": (4.0, 0.5, 2.5, 6.0, 1.3, -0.5, 0.20, 0.02),
    "d": (5.0, 3.0, 1.5, 0.0, 1.1, 0.0, 0.70, 0.35),
    "e": (-1.0, -3.0, 1.2, 3.0, 0.9, -0.2, 0.35, 0.15),
}
_CLASS_PAIRS = {
    "neutral": ("A", "a"),
    "calm": ("A", "b"),
    "happy": ("B", "c"),
    "sad": ("E", "b"),
    "angry": ("C", "c"),
    "fearful": ("D", "d"),
    "disgust": ("C", "e"),
    "surprised": ("D", "c"),
}


def _real(value: object) -> bool:
    """A number (not a bool or a string); NaN fails the range checks that follow."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class SyntheticConfig:
    """Size and difficulty of the synthetic set.

    ``difficulty`` in [0, 1] shrinks the emotion cues and grows per-clip variation, head
    motion, lighting changes and noise. The defaults (12 actors x 8 classes x 4 clips = 384
    clips of about 2.5 s) keep a ``ding2025`` search fast on two CPU cores.
    """

    actors: int = 12
    clips_per_class: int = 4
    clip_seconds: float = 2.5
    difficulty: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.actors, int) and 2 <= self.actors <= 1000):
            raise UsageError(f"synthetic actors={self.actors!r} is invalid: use 2..1000")
        if not (isinstance(self.clips_per_class, int) and 1 <= self.clips_per_class <= 1000):
            raise UsageError(
                f"synthetic clips_per_class={self.clips_per_class!r} is invalid: use 1..1000"
            )
        if not (_real(self.clip_seconds) and 0.5 <= self.clip_seconds <= 30.0):
            raise UsageError(
                f"synthetic clip_seconds={self.clip_seconds!r} is invalid: use 0.5..30"
            )
        if not (_real(self.difficulty) and 0.0 <= self.difficulty <= 1.0):
            raise UsageError(f"synthetic difficulty={self.difficulty!r} is invalid: use 0..1")
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool)) or not (
            0 <= self.seed < 2**32
        ):
            raise UsageError(f"synthetic seed={self.seed!r} is invalid: use 0..2**32-1")

    def fingerprint(self) -> str:
        data = json.dumps({"v": _VERSION, **asdict(self)}, sort_keys=True)
        return "synthetic-" + hashlib.sha256(data.encode()).hexdigest()[:16]


def load_synthetic(config: SyntheticConfig | None = None, **options: object) -> Dataset:
    """The synthetic data set; ``options`` are ``SyntheticConfig`` fields."""
    if config is None:
        try:
            config = SyntheticConfig(**options)  # type: ignore[arg-type]
        except TypeError:
            valid = ", ".join(SyntheticConfig.__dataclass_fields__)
            raise UsageError(
                f"unknown synthetic option(s) {sorted(options)}: valid options are {valid}"
            ) from None
    clips = []
    for actor in range(config.actors):
        for label, name in enumerate(RAVDESS_CLASSES):
            for rep in range(config.clips_per_class):
                # neutral has one intensity in RAVDESS; the others alternate normal/strong
                intensity = "normal" if name == "neutral" or rep % 2 == 0 else "strong"
                clips.append(
                    ClipInfo(
                        clip_id=f"syn-a{actor:02d}-{name}-{rep}",
                        label=label,
                        actor=f"{actor + 1:02d}",
                        intensity=intensity,
                        statement=str(rep % 2 + 1),
                        extra={"actor_index": actor, "rep": rep},
                    )
                )

    def reader(clip: ClipInfo, request: MediaRequest) -> ClipMedia:
        return render_clip(config, clip, request)

    return Dataset(
        name="synthetic",
        class_names=RAVDESS_CLASSES,
        clips=tuple(clips),
        fingerprint=config.fingerprint(),
        reader=reader,
        description=(
            f"synthetic: {config.actors} actors x 8 classes x {config.clips_per_class} clips, "
            f"{config.clip_seconds} s, difficulty {config.difficulty}, seed {config.seed}"
        ),
    )


# --- identities and clip parameters -------------------------------------------------------


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]))


@dataclass(frozen=True)
class _Actor:
    face_w: float
    face_h: float
    eye_gap: float
    eye_size: float
    mouth_y: float
    brow_thick: float
    skin: np.ndarray  # RGB in [0, 1]
    background: np.ndarray
    f0_hz: float
    formant_scale: float
    rate_hz: float
    tilt: float
    gains: np.ndarray  # personal gain on each of 15 emotion cues


def _actor(seed: int, index: int) -> _Actor:
    rng = _rng(seed, 1, index)
    female = index % 2 == 1
    tone = rng.uniform(0.25, 0.95)
    skin = np.array([0.95, 0.75, 0.6]) * tone + rng.normal(0, 0.03, 3)
    return _Actor(
        face_w=rng.uniform(0.52, 0.66),
        face_h=rng.uniform(0.72, 0.86),
        eye_gap=rng.uniform(0.22, 0.32),
        eye_size=rng.uniform(0.8, 1.2),
        mouth_y=rng.uniform(0.36, 0.46),
        brow_thick=rng.uniform(0.025, 0.045),
        skin=np.clip(skin, 0.05, 1.0),
        background=rng.uniform(0.1, 0.9, 3),
        f0_hz=(rng.uniform(180, 250) if female else rng.uniform(95, 140)),
        formant_scale=(rng.uniform(1.05, 1.2) if female else rng.uniform(0.9, 1.02)),
        rate_hz=rng.uniform(3.2, 4.8),
        tilt=rng.uniform(-0.2, 0.2),
        gains=rng.uniform(0.6, 1.4, 15),
    )


def _clip_params(config: SyntheticConfig, clip: ClipInfo, actor: _Actor):
    face_key, voice_key = _CLASS_PAIRS[RAVDESS_CLASSES[clip.label]]
    rng = _rng(config.seed, 2, clip.extra["actor_index"], clip.label, clip.extra["rep"])
    d = float(config.difficulty)
    strength = (1.0 if clip.intensity == "strong" else 0.7) * (1.0 - 0.35 * d)
    jitter = 0.12 + 0.35 * d  # per-clip variation of each voice cue, in cue units
    face_jitter = 0.08 + 0.22 * d
    face = np.array(_FACES[face_key], dtype=float)
    voice = np.array(_VOICES[voice_key], dtype=float)
    face_cues = face[:6] * strength * actor.gains[:6] + rng.normal(0, face_jitter, 6)
    onset_speed = face[6] * rng.uniform(0.8, 1.25)
    # voice cues: scale the deviations from neutral by strength and the actor's gains
    base = np.array(_VOICES["a"], dtype=float)
    dev = (voice - base) * strength * actor.gains[6:14]
    scale = np.array([3.0, 2.0, 0.6, 3.0, 0.15, 0.3, 0.08, 0.05])
    voice_cues = base + dev + rng.normal(0, jitter, 8) * scale
    voice_cues[4] = max(voice_cues[4], 0.4)  # rate
    voice_cues[2] = max(voice_cues[2], 0.1)
    voice_cues[6] = max(voice_cues[6], 0.0)
    voice_cues[7] = float(np.clip(voice_cues[7], 0.0, 0.8))
    return face_cues, onset_speed, voice_cues, rng


# --- rendering ----------------------------------------------------------------------------


# Rendered voices by (config, clip, sample rate), least recently used first. A search builds
# features for a new input shape at nearly every trial, and requests that differ only in their
# video share the voice, which is most of a clip's rendering (40 harmonics at 16-22 kHz). The
# video goes on from the generator state the voice left, so a clip is the same either way.
_VOICES_MEMO: OrderedDict[tuple[Any, ...], tuple[np.ndarray, dict[str, Any], float]] = OrderedDict()
_VOICES_MEMO_BYTES = 192 * 2**20  # two sample rates of the search's 240 clips fit


def render_clip(config: SyntheticConfig, clip: ClipInfo, request: MediaRequest) -> ClipMedia:
    """Render one clip's audio and frames exactly at the requested rate and size."""
    actor = _actor(config.seed, clip.extra["actor_index"])
    face, onset, voice, rng = _clip_params(config, clip, actor)
    key = (config, clip.clip_id, request.sample_rate_hz)
    hit = _VOICES_MEMO.get(key)
    if hit is None:
        seconds = float(config.clip_seconds) * float(rng.uniform(0.9, 1.1))
        audio = _render_audio(config, actor, voice, seconds, request.sample_rate_hz, rng)
        _remember_voice(key, (audio, rng.bit_generator.state, seconds))
    else:
        _VOICES_MEMO.move_to_end(key)
        audio, state, seconds = hit
        rng.bit_generator.state = state
    video = _render_video(config, actor, face, onset, seconds, request, rng)
    return ClipMedia(audio=audio.copy(), video=video)


def _remember_voice(key: tuple[Any, ...], value: tuple[np.ndarray, dict[str, Any], float]) -> None:
    _VOICES_MEMO[key] = value
    total = sum(v[0].nbytes for v in _VOICES_MEMO.values())
    while total > _VOICES_MEMO_BYTES and len(_VOICES_MEMO) > 1:
        total -= _VOICES_MEMO.popitem(last=False)[1][0].nbytes


def _smooth_noise(rng: np.random.Generator, n: int, knots: int) -> np.ndarray:
    """A smooth random curve of ``n`` points with about ``knots`` wiggles, std ~ 1."""
    pts = rng.normal(0, 1, knots + 2)
    return np.interp(np.linspace(0, knots + 1, n), np.arange(knots + 2), pts)


def _render_video(config, actor: _Actor, face, onset_speed, seconds, req: MediaRequest, rng):
    n, h, w = req.frames, req.height, req.width
    d = float(config.difficulty)
    # central frame of each of n equal segments, as the feature pipeline samples real video
    t = (np.arange(n) + 0.5) / n  # normalised time in (0, 1)
    t_on = rng.uniform(0.05, 0.25)
    env = np.clip((t - t_on) * 4.0 * onset_speed, 0.0, 1.0)
    env = env * env * (3 - 2 * env)  # smoothstep onset of the expression
    brow_raise, brow_tilt, eye_open, curve, mouth_open, mouth_w = (face[:, None] * env).reshape(
        6, n, 1, 1
    )
    # talking moves the mouth; blinks close the eyes briefly
    talk = 0.25 * np.abs(np.sin(2 * np.pi * actor.rate_hz * seconds * t + rng.uniform(0, 6)))
    mouth_open = mouth_open + talk.reshape(n, 1, 1) * 0.6
    blink_at = rng.uniform(0, 1, 2)
    blink = np.ones(n)
    for b in blink_at:
        blink = blink * np.clip(np.abs(t - b) / 0.04, 0.15, 1.0)
    eye_scale = (1.0 + 0.6 * eye_open) * blink.reshape(n, 1, 1)
    # head motion (translation, in-plane rotation) and lighting drift
    motion = 0.02 + 0.06 * d
    dx = (motion * _smooth_noise(rng, n, 2)).reshape(n, 1, 1)
    dy = (motion * _smooth_noise(rng, n, 2)).reshape(n, 1, 1)
    ang = (np.deg2rad(2 + 8 * d) * _smooth_noise(rng, n, 2)).reshape(n, 1, 1)
    gain = (1.0 + (0.05 + 0.25 * d) * _smooth_noise(rng, n, 1)).reshape(n, 1, 1, 1)
    side = rng.uniform(-1, 1) * (0.1 + 0.3 * d)

    # float32 throughout: a 15 x 224 x 224 RGB clip is ~2 M pixels per layer
    ys = ((np.arange(h) + 0.5) / h * 2 - 1).astype(np.float32)
    xs = ((np.arange(w) + 0.5) / w * 2 - 1).astype(np.float32)
    dx, dy, ang = (v.astype(np.float32) for v in (dx, dy, ang))
    brow_raise, brow_tilt, eye_open, curve, mouth_open, mouth_w, eye_scale = (
        v.astype(np.float32)
        for v in (brow_raise, brow_tilt, eye_open, curve, mouth_open, mouth_w, eye_scale)
    )
    y0, x0 = ys[None, :, None], xs[None, None, :]
    cos, sin = np.cos(ang), np.sin(ang)
    x = cos * (x0 - dx) + sin * (y0 - dy)
    y = -sin * (x0 - dx) + cos * (y0 - dy)
    px = 2.0 / max(min(h, w), 1)  # one pixel in normalised units: soft edges anti-alias

    def ellipse(cx, cy, ax, ay):
        r = np.sqrt(((x - cx) / np.maximum(ax, 1e-3)) ** 2 + ((y - cy) / np.maximum(ay, 1e-3)) ** 2)
        edge = px / np.maximum(np.minimum(ax, ay), 1e-3)
        return np.clip((1.0 - r) / edge + 0.5, 0.0, 1.0)

    def segment(xa, ya, xb, yb, thick):
        vx, vy = xb - xa, yb - ya
        tt = np.clip(((x - xa) * vx + (y - ya) * vy) / (vx * vx + vy * vy + 1e-9), 0.0, 1.0)
        dist = np.sqrt((x - xa - tt * vx) ** 2 + (y - ya - tt * vy) ** 2)
        return np.clip((thick - dist) / px + 0.5, 0.0, 1.0)

    c = req.channels
    bg = np.clip(actor.background * rng.uniform(0.85, 1.15, 3), 0, 1)
    skin, dark = actor.skin, actor.skin * 0.18
    if c == 1:
        lum = np.array([0.299, 0.587, 0.114])
        bg, skin, dark = (np.array([v @ lum]) for v in (bg, skin, dark))
    bg, skin, dark = (np.asarray(v, dtype=np.float32) for v in (bg, skin, dark))
    img = np.broadcast_to(bg, (n, h, w, c)).astype(np.float32)

    def paint(mask, color):
        m = mask[..., None]
        img[...] = img * (1.0 - m) + color * m

    paint(ellipse(0.0, 0.05, actor.face_w, actor.face_h), skin)
    eg, es = actor.eye_gap, actor.eye_size
    for sx in (-1.0, 1.0):
        paint(ellipse(sx * eg, -0.12, 0.11 * es, 0.055 * es * eye_scale), dark)
        by = -0.27 - 0.12 * brow_raise
        inner_y = by - 0.09 * brow_tilt
        paint(segment(sx * (eg - 0.12), inner_y, sx * (eg + 0.13), by, actor.brow_thick), dark)
    paint(segment(0.0, -0.05, 0.0, 0.18, 0.015), skin * 0.75)  # nose
    my, hw = actor.mouth_y, 0.2 * (1.0 + 0.3 * mouth_w)
    paint(ellipse(0.0, my, hw * 0.8, 0.015 + 0.09 * np.maximum(mouth_open, 0.0)), dark)
    # lip line: a parabola whose corners rise with ``curve``; drawn as two segments per side
    for sx in (-1.0, 1.0):
        mid_x, mid_y = sx * hw * 0.5, my - 0.04 * curve
        paint(segment(0.0, my, mid_x, mid_y, 0.02), dark)
        paint(segment(mid_x, mid_y, sx * hw, my - 0.16 * curve, 0.02), dark)
    light = (gain * (1.0 + side * x0[..., None])).astype(np.float32)
    noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(0.02 + 0.06 * d)
    img = img * light + noise
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _render_audio(config, actor: _Actor, voice, seconds, sr: int, rng) -> np.ndarray:
    level, slope, inton, energy_db, rate, tilt, jitter, breath = voice
    d = float(config.difficulty)
    n = round(seconds * sr)
    t = np.arange(n) / sr
    tn = t / seconds
    start, stop = rng.uniform(0.1, 0.3), seconds - rng.uniform(0.1, 0.3)
    semis = (
        level
        + slope * (tn - 0.5)
        + inton * _smooth_noise(rng, n, 4)
        + jitter * _smooth_noise(rng, n, int(seconds * 60))
    )
    f0 = actor.f0_hz * 2.0 ** (semis / 12.0)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    # syllables: a raised-sine envelope at the speaking rate, with a vowel per syllable
    syl_rate = actor.rate_hz * rate * (1 + 0.1 * _smooth_noise(rng, n, 2))
    syl_phase = np.cumsum(syl_rate) / sr
    env = np.sin(np.pi * syl_phase) ** 2 * ((t > start) & (t < stop))
    vowels = np.array(
        [
            [730, 1090, 2440],
            [270, 2290, 3010],
            [530, 1840, 2480],
            [570, 840, 2410],
            [300, 870, 2240],
        ],
        dtype=float,
    )
    syl_index = np.floor(syl_phase).astype(int)
    choice = _rng(int(rng.integers(1 << 30)), 3).integers(0, len(vowels), syl_index.max() + 1)
    formants = vowels[choice[syl_index]] * actor.formant_scale  # (n, 3)
    # harmonic amplitudes change slowly: compute them every 5 ms and hold them in between
    step = max(sr // 200, 1)
    coarse = slice(0, n, step)
    k = np.arange(1, 41)[:, None]
    fk = k * f0[None, coarse]
    amp = k ** -(1.0 + actor.tilt + tilt)
    fc = formants[coarse]
    shape = 0.08 + sum(np.exp(-(((fk - fc[None, :, i]) / (90.0 + 40 * i)) ** 2)) for i in range(3))
    weights = np.repeat(amp * shape * (fk < 0.45 * sr), step, axis=1)[:, :n]
    wrapped = np.mod(phase, 2 * np.pi).astype(np.float32)  # float32 sines are ~2x faster
    harmonics = np.sin(k.astype(np.float32) * wrapped[None, :])
    voiced = np.einsum("kn,kn->n", weights.astype(np.float32), harmonics).astype(np.float64)
    voiced /= 4.0
    noise = rng.normal(0, 1, n)
    breathy = np.convolve(noise, np.ones(4) / 4, mode="same") * breath * 0.3
    sig = (voiced * (1 - breath) + breathy) * env * 10 ** (energy_db / 20.0) * 0.3
    sig = sig + rng.normal(0, 0.002 + 0.01 * d, n)  # background noise
    return np.clip(sig, -1.0, 1.0).astype(np.float32)
