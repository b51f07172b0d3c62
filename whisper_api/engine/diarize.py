"""Who spoke when: speaker labels for a transcript's segments.

Multi-channel recordings (a call centre's one speaker per channel) are transcribed channel by
channel, each channel being its own speaker, and merged in time order. Mono recordings are cut on
Whisper's own segments (speech between pauses), each segment is embedded by the speaker encoder,
and the embeddings are clustered (average linkage on cosine similarity, stopping when the closest
clusters are less alike than a threshold). Known speakers' reference clips name the clusters
they match. Nothing here guesses: without the speaker model a mono request is refused upstream.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from string import ascii_uppercase

import numpy as np

from whisper_api.engine.types import (
    Audio,
    Segment,
    Transcriber,
    TranscriptionInfo,
    TranscriptionOptions,
    Word,
)
from whisper_api.engine.windows import AudioReader, pauses

logger = logging.getLogger(__name__)

#: Segments shorter than this are too short to embed; they take a neighbour's speaker.
MIN_EMBED_SECONDS = 0.5
#: Speakers are found on pieces at least this long; shorter ones join the voice they are most like.
RELIABLE_SECONDS = 2.0
#: A voice must be heard this long in all to count as a speaker.
MIN_SPEAKER_SECONDS = 4.0
#: A known speaker names a cluster only when their voices are at least this alike (cosine).
KNOWN_MATCH = 0.7
#: Channels this alike (correlation) carry the same signal: the recording is mono in disguise.
SAME_CHANNEL_CORRELATION = 0.98


class Embedder:
    """What the diarizer needs from a speaker encoder."""

    def embed(self, samples: np.ndarray) -> np.ndarray: ...


class _Checked:
    """An embedder that lets the caller stop the work between clips."""

    def __init__(self, encoder: Embedder, check: Callable[[], None]) -> None:
        self._encoder = encoder
        self._check = check

    def embed(self, samples: np.ndarray) -> np.ndarray:
        self._check()
        return self._encoder.embed(samples)


@dataclass(frozen=True)
class KnownSpeaker:
    """A name and a short clip of that person's voice (OpenAI's known_speaker_* fields)."""

    name: str
    audio: Audio


@dataclass(frozen=True)
class DiarizationSettings:
    threshold: float = 0.8  # cosine similarity under which two clusters are different speakers
    max_speakers: int = 8


def speaker_label(index: int) -> str:
    """`A`, `B`, ... `Z`, then `S27`, `S28`, ..."""
    return ascii_uppercase[index] if index < len(ascii_uppercase) else f"S{index + 1}"


def distinct_channels(channels: Sequence[Audio]) -> bool:
    """True when a multi-channel recording's channels carry different signals."""
    if len(channels) < 2:
        return False
    first = channels[0].samples
    for other in channels[1:]:
        if np.std(first) < 1e-6 or np.std(other.samples) < 1e-6:
            return True
        if float(np.corrcoef(first, other.samples)[0, 1]) < SAME_CHANNEL_CORRELATION:
            return True
    return False


def cluster(embeddings: np.ndarray, threshold: float, max_speakers: int) -> list[int]:
    """Average-linkage agglomerative clustering on cosine similarity; cluster index per row."""
    count = len(embeddings)
    if count == 0:
        return []
    groups: list[list[int]] = [[i] for i in range(count)]
    similarity = embeddings @ embeddings.T
    while len(groups) > 1:
        best, pair = -2.0, (0, 1)
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                value = float(similarity[np.ix_(groups[a], groups[b])].mean())
                if value > best:
                    best, pair = value, (a, b)
        if best < threshold and len(groups) <= max_speakers:
            break
        a, b = pair
        groups[a] += groups.pop(b)
    labels = [0] * count
    for index, members in enumerate(sorted(groups, key=min)):  # numbered by first appearance
        for member in members:
            labels[member] = index
    return labels


def name_clusters(centroids: np.ndarray, known: Sequence[np.ndarray], names: Sequence[str]) -> dict[int, str]:
    """Give each known speaker the cluster most like their reference (one each, best pairs first)."""
    pairs = sorted(
        ((float(centroids[c] @ ref), c, k) for c in range(len(centroids)) for k, ref in enumerate(known)),
        reverse=True,
    )
    named: dict[int, str] = {}
    used: set[int] = set()
    for value, c, k in pairs:
        if value >= KNOWN_MATCH and c not in named and k not in used:
            named[c] = names[k]
            used.add(k)
    return named


def _labels(index_of: list[int], named: dict[int, str]) -> dict[int, str]:
    """Letters for unnamed clusters, in order of first appearance, skipping none."""
    labels: dict[int, str] = {}
    letters = 0
    for cluster_index in dict.fromkeys(index_of):
        if cluster_index in named:
            labels[cluster_index] = named[cluster_index]
        else:
            labels[cluster_index] = speaker_label(letters)
            letters += 1
    return labels


def _clips(audio: Audio, spans: Sequence[tuple[float, float]]) -> Iterator[np.ndarray]:
    """The samples of each (start, end) span, read in time order (long audio is not in memory)."""
    reader = AudioReader(audio)
    try:
        for start, end in spans:
            yield reader.read(start, end)
    finally:
        reader.close()


def label_mono(
    audio: Audio,
    segments: Sequence[Segment],
    encoder: Embedder,
    known: Sequence[KnownSpeaker],
    settings: DiarizationSettings,
) -> list[Segment]:
    """Speaker labels for one voice track's segments, by embedding and clustering them.

    Segments with word times are first cut where the voice activity detector hears a turn's pause
    in them, and long ones at sentence ends (Whisper may put two speakers in one segment); the
    pieces are clustered, then pieces of one segment that got the same speaker are joined again.
    """
    reader = AudioReader(audio)

    def pauses_in(start: float, end: float) -> list[tuple[float, float]]:
        return [(start + a, start + b) for a, b in pauses(reader.read(start, end))]

    try:
        spoken = [s for s in speech_units(segments, pauses_in) if s.text.strip()]
    finally:
        reader.close()
    if not spoken:
        return []
    embedded = [i for i, s in enumerate(spoken) if s.end - s.start >= MIN_EMBED_SECONDS] or list(
        range(len(spoken))
    )
    spans = [(spoken[i].start, spoken[i].end) for i in embedded]
    embeddings = np.stack([encoder.embed(clip) for clip in _clips(audio, spans)])
    # Short clips give noisy embeddings: the voices are found on the long ones, and each short one
    # joins the voice it is most like.
    reliable = [j for j, i in enumerate(embedded) if spoken[i].end - spoken[i].start >= RELIABLE_SECONDS]
    if len(reliable) < 2:
        reliable = list(range(len(embedded)))
    groups = cluster(embeddings[reliable], settings.threshold, settings.max_speakers)
    members = [[reliable[j] for j, c in enumerate(groups) if c == k] for k in range(max(groups) + 1)]
    # A voice heard for only a few seconds in all is more likely noise in the embeddings than a
    # speaker: its pieces go to the voices that remain.
    seconds = [sum(spoken[embedded[j]].end - spoken[embedded[j]].start for j in m) for m in members]
    kept = [m for m, total in zip(members, seconds, strict=True) if total >= MIN_SPEAKER_SECONDS]
    centroids = np.stack([embeddings[m].mean(axis=0) for m in (kept or members)])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-8)
    clusters = [int(np.argmax(centroids @ e)) for e in embeddings]
    named = name_clusters(centroids, [encoder.embed(k.audio.samples) for k in known], [k.name for k in known])
    by_segment = dict(zip(embedded, clusters, strict=True))
    # Too short to embed: the speaker of the nearest embedded piece in time.
    index_of = [
        by_segment[i] if i in by_segment else by_segment[min(by_segment, key=lambda j: abs(j - i))]
        for i in range(len(spoken))
    ]
    labels = _labels(index_of, named)
    joined = _join_runs([replace(s, speaker=labels[index_of[i]]) for i, s in enumerate(spoken)])
    return [replace(s, id=i) for i, s in enumerate(joined)]


#: Whisper sometimes puts several turns in one long segment: longer segments are cut...
LONG_SEGMENT_SECONDS = 8.0
#: ... at sentence ends and pauses of at least this long ...
SPLIT_PAUSE_SECONDS = 0.3
#: ... into pieces no shorter than this (short clips give noisy voices).
MIN_PIECE_SECONDS = 3.0
_SENTENCE_ENDS = (".", "?", "!", "。", "？", "！")


#: A silence this long inside a segment (Silero VAD) is taken for a change of turn: cut there.
TURN_PAUSE_SECONDS = 0.5


def speech_units(
    segments: Sequence[Segment], pauses_in: Callable[[float, float], list[tuple[float, float]]] | None = None
) -> list[Segment]:
    """The units speakers are told apart on: Whisper's segments, cut at the pauses heard in them
    (`pauses_in(start, end)`, absolute seconds, segments asked in time order), long ones also at
    sentence ends by their words' times."""
    pieces = [p for s in segments for p in (_cut_at_turns(s, pauses_in) if pauses_in else [s])]
    units: list[Segment] = []
    for segment in pieces:
        if not segment.words or segment.end - segment.start <= LONG_SEGMENT_SECONDS:
            units.append(segment)
            continue
        groups: list[list[Word]] = [[segment.words[0]]]
        for previous, word in zip(segment.words, segment.words[1:], strict=False):
            pause = word.start - previous.end >= SPLIT_PAUSE_SECONDS
            long_enough = previous.end - groups[-1][0].start >= MIN_PIECE_SECONDS
            if long_enough and (pause or previous.word.rstrip().endswith(_SENTENCE_ENDS)):
                groups.append([])
            groups[-1].append(word)
        if len(groups) > 1 and groups[-1][-1].end - groups[-1][0].start < MIN_PIECE_SECONDS:
            groups[-2] += groups.pop()  # a short tail joins the piece before it
        units += [_piece(segment, group) for group in groups]
    return units


def _cut_at_turns(
    segment: Segment, pauses_in: Callable[[float, float], list[tuple[float, float]]]
) -> list[Segment]:
    """The segment cut at the middle of every turn-long pause in it; each word goes to the piece its
    middle falls in (Whisper's word times are rough, a pause's middle is far from both turns)."""
    if len(segment.words) < 2:
        return [segment]
    heard = pauses_in(segment.start, segment.end)
    cuts = sorted((a + b) / 2 for a, b in heard if b - a >= TURN_PAUSE_SECONDS)
    if not cuts:
        return [segment]
    groups: dict[int, list[Word]] = {}
    for word in segment.words:
        groups.setdefault(bisect.bisect(cuts, (word.start + word.end) / 2), []).append(word)
    if len(groups) == 1:
        return [segment]
    return [_piece(segment, words) for words in groups.values()]


def _piece(segment: Segment, words: list[Word]) -> Segment:
    """Part of a segment (same id, so its pieces can be joined again); tokens belong to the whole."""
    return replace(
        segment,
        start=words[0].start,
        end=words[-1].end,
        text="".join(w.word for w in words),
        words=tuple(words),
        tokens=(),
        logprobs=(),
    )


def _join_runs(pieces: Sequence[Segment]) -> list[Segment]:
    """Consecutive pieces of one segment with the same speaker, joined."""
    joined: list[Segment] = []
    for piece in pieces:
        last = joined[-1] if joined else None
        if last is not None and last.id == piece.id and last.speaker == piece.speaker:
            joined[-1] = replace(
                last, end=piece.end, text=last.text + piece.text, words=last.words + piece.words
            )
        else:
            joined.append(piece)
    return joined


def label_channels(
    per_channel: Sequence[Sequence[Segment]],
    channels: Sequence[Audio],
    encoder: Embedder | None,
    known: Sequence[KnownSpeaker],
) -> list[Segment]:
    """One speaker per channel, merged by start time; known speakers name the channels they match."""
    named: dict[int, str] = {}
    if known and encoder is not None:
        voices = []
        for audio, segments in zip(channels, per_channel, strict=True):
            speech = list(_clips(audio, [(s.start, s.end) for s in segments if s.text.strip()]))
            voices.append(encoder.embed(np.concatenate(speech)) if speech else np.zeros(256))
        named = name_clusters(
            np.stack(voices), [encoder.embed(k.audio.samples) for k in known], [k.name for k in known]
        )
    used = [i for i, segments in enumerate(per_channel) if any(s.text.strip() for s in segments)]
    labels = _labels(used, named)
    merged = sorted(
        ((s, labels[i]) for i, segments in enumerate(per_channel) for s in segments if s.text.strip()),
        key=lambda pair: (pair[0].start, pair[0].end),
    )
    return [replace(s, id=i, speaker=label) for i, (s, label) in enumerate(merged)]


def transcribe_diarized(
    transcriber: Transcriber,
    audio: Audio,
    channels: Sequence[Audio],
    options: TranscriptionOptions,
    known: Sequence[KnownSpeaker],
    encoder: Callable[[], Embedder] | None,
    settings: DiarizationSettings,
    check: Callable[[], None] = lambda: None,
) -> tuple[TranscriptionInfo, Iterator[Segment]]:
    """Transcribe and label speakers; segments come when the whole recording is labelled.

    `encoder` is None when the speaker model is not installed: then only distinct channels can
    be told apart, and the caller has refused everything else. `check` is called between
    embeddings (it raises to stop: a deadline, a client gone).
    """
    if distinct_channels(channels):
        # Each channel alone: a quiet channel must not hallucinate, so its silence is skipped.
        channel_options = replace(options, vad_filter=True)
        runs = [transcriber.transcribe(channel, channel_options) for channel in channels]
        info = replace(runs[0][0], duration=audio.duration)

        def by_channel() -> Iterator[Segment]:
            per_channel = [list(segments) for _, segments in runs]
            yield from label_channels(per_channel, channels, encoder() if known and encoder else None, known)

        return info, by_channel()
    if encoder is None:
        raise RuntimeError("mono diarization needs the speaker encoder")
    # Word times let a segment that holds two voices be cut where one stops.
    info, segments = transcriber.transcribe(audio, replace(options, word_timestamps=True))

    def by_voice() -> Iterator[Segment]:
        try:
            decoded = list(segments)
        finally:
            close = getattr(segments, "close", None)
            if close is not None:
                close()
        yield from label_mono(audio, decoded, _Checked(encoder(), check), known, settings)

    return info, by_voice()
