"""Who spoke when: speaker labels for stretches of speech, from their voice embeddings.

The steps, each a pure function (the embeddings come from :mod:`pipeline.backends.speakers`):

1. :func:`windows` cuts each stretch of speech (from a VAD) into equal windows of about
   ``WINDOW_S`` (1 s), so that a stretch in which the speaker changes can be split between speakers.
2. The caller embeds each window.
3. :func:`diarize` clusters the embeddings with scikit-learn's agglomerative clustering (average
   linkage, cosine distance) and labels them "S1", "S2", ... in order of first appearance.
4. :func:`turns` joins adjacent windows of the same speaker into turns.

Why these settings (measured with resemblyzer's encoder on 9 recordings: the two-speaker
conversation fixture, the AMI meeting excerpt, four mixes of real recordings of 2-4 speakers and
three single speakers, each with 5 ways of finding speech: 45 cases; ``benchmarks/diarize_der.py``):

- Windows of 1 s. Longer windows straddle more turns: the conversation's two speakers, close in
  embedding space (telephone quality, similar voices), were told apart with 1.5 s or 2 s windows
  in at most 1 of its 5 cases at any threshold from 0.31 to 0.44 (at 0.30, in 4 and 2).
- Threshold 0.36 on the average cosine distance between two clusters' windows. Two 1 s windows
  of one speaker lie 0.28-0.35 apart on average (per recording), two of different speakers in one
  recording 0.40 (conversation) and 0.43 (AMI), in the mixes 0.52-0.57. With 0.36 the number of
  speakers was right in 41 of the 45 cases, the conversation's in all 5 (0.34: 38; 0.38: 40,
  the conversation's in 3).
- A speaker needs ``MIN_SPEAKER_S`` (4 s) of speech: smaller clusters (a cough, a laugh, a
  window straddling a turn) are dissolved and their windows go to the nearest remaining speaker.
  With 2 s the number of speakers was right in 32 of the 45 cases at 0.36 (39 at best, at 0.42,
  where the conversation's was right in 1 of 5).

The margins are thin: resemblyzer's embeddings of two speakers sharing a channel are barely
farther apart than those of one speaker. When the number of speakers is known, give it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: A stretch of time, (start, end) in seconds.
Span = tuple[float, float]
Embeddings = npt.NDArray[np.float32]

#: Length the stretches of speech are cut to, in seconds (equal windows of 0.67-1.5 s).
WINDOW_S = 1.0
#: Clusters closer than this (average cosine distance between their windows) are one speaker.
THRESHOLD = 0.36
#: Speech a cluster needs to count as a speaker, in seconds.
MIN_SPEAKER_S = 4.0


@dataclass(frozen=True, slots=True)
class Turn:
    """A stretch of time in which one speaker speaks; seconds."""

    start: float
    end: float
    speaker: str


def windows(stretches: Sequence[Span], window_s: float = WINDOW_S) -> list[Span]:
    """Each stretch cut into equal windows of about ``window_s`` (0.67 to 1.5 times it); a stretch
    shorter than 1.5 ``window_s`` stays whole."""
    if window_s <= 0:
        raise ValueError("window_s must be positive")
    cut: list[Span] = []
    for start, end in stretches:
        count = max(1, round((end - start) / window_s))
        step = (end - start) / count
        cut.extend((start + i * step, end if i == count - 1 else start + (i + 1) * step) for i in range(count))
    return cut


def diarize(
    stretches: Sequence[Span],
    embeddings: Embeddings,
    speakers: int | None = None,
    *,
    threshold: float = THRESHOLD,
    min_speaker_s: float = MIN_SPEAKER_S,
) -> list[str]:
    """A speaker label for each stretch ("S1", "S2", ... in order of first appearance).

    ``embeddings`` holds one unit-norm embedding per stretch (rows, same order). Without
    ``speakers``, the number comes from ``threshold`` (see the module's notes), and clusters with
    less than ``min_speaker_s`` of speech are dissolved into the nearest remaining one (if none
    has that much, the largest remains). With ``speakers``, exactly that many labels are used
    (fewer only if there are fewer stretches): the tree is cut until that many clusters have
    ``min_speaker_s`` of speech, or into single stretches, and the rest are dissolved.
    """
    if len(stretches) != len(embeddings):
        raise ValueError(f"{len(stretches)} stretches but {len(embeddings)} embeddings")
    if speakers is not None and speakers < 1:
        raise ValueError("speakers must be at least 1")
    if not 0.0 < threshold < 2.0:
        raise ValueError("threshold must be a cosine distance between 0 and 2")
    if len(stretches) == 0:
        return []
    durations = np.array([end - start for start, end in stretches], dtype=np.float64)
    clusters = _clusters(np.asarray(embeddings, dtype=np.float64), durations, speakers, threshold, min_speaker_s)
    order = sorted(range(len(stretches)), key=lambda i: stretches[i][0])
    names: dict[int, str] = {}
    for i in order:
        names.setdefault(int(clusters[i]), f"S{len(names) + 1}")
    return [names[int(c)] for c in clusters]


def turns(stretches: Sequence[Span], labels: Sequence[str], max_gap_s: float = 0.0) -> list[Turn]:
    """Stretches in time order with their labels, joined into turns: a stretch continues the turn
    before it when the speaker is the same and the silence between them is at most ``max_gap_s``."""
    if len(stretches) != len(labels):
        raise ValueError(f"{len(stretches)} stretches but {len(labels)} labels")
    joined: list[Turn] = []
    for (start, end), speaker in sorted(zip(stretches, labels, strict=True)):
        last = joined[-1] if joined else None
        if last is not None and last.speaker == speaker and start - last.end <= max_gap_s + 1e-9:
            joined[-1] = Turn(last.start, max(last.end, end), speaker)
        else:
            joined.append(Turn(start, end, speaker))
    return joined


def _clusters(
    embeddings: npt.NDArray[np.float64],
    durations: npt.NDArray[np.float64],
    speakers: int | None,
    threshold: float,
    min_speaker_s: float,
) -> npt.NDArray[np.int64]:
    """A cluster number for each row: agglomerative clustering, then small clusters dissolved."""
    from sklearn.cluster import AgglomerativeClustering

    count = len(embeddings)
    if count == 1:
        return np.zeros(1, dtype=np.int64)
    # The whole tree once; cutting it at any number of clusters is then a replay of its merges.
    tree = AgglomerativeClustering(
        n_clusters=None, distance_threshold=0.0, compute_full_tree=True, metric="cosine", linkage="average"
    ).fit(embeddings)
    merges: npt.NDArray[np.int64] = tree.children_
    if speakers is None:
        # As scikit-learn cuts at a distance_threshold: no merge at or above it.
        clusters = _cut(merges, count, int(np.count_nonzero(tree.distances_ >= threshold)) + 1)
        speech = _speech(clusters, durations)
        kept = [c for c, seconds in speech.items() if seconds >= min_speaker_s] or [max(speech, key=speech.__getitem__)]
    else:
        # Cut the tree lower and lower until `speakers` clusters have enough speech each: a lone
        # outlier window would otherwise take one of the speakers' places.
        for n in range(min(speakers, count), count + 1):
            clusters = _cut(merges, count, n)
            speech = _speech(clusters, durations)
            if sum(seconds >= min_speaker_s for seconds in speech.values()) >= speakers:
                break
        kept = sorted(speech, key=speech.__getitem__, reverse=True)[:speakers]
    return _dissolve(embeddings, durations, clusters, kept)


def _cut(merges: npt.NDArray[np.int64], count: int, clusters: int) -> npt.NDArray[np.int64]:
    """The tree's leaves in ``clusters`` clusters: its first ``count - clusters`` merges applied.

    ``merges`` is scikit-learn's ``children_``: row i joins two nodes into node ``count + i``,
    where nodes below ``count`` are the leaves. Each leaf's cluster is the node it ends up in.
    """
    top = np.arange(count + len(merges), dtype=np.int64)
    for i, (a, b) in enumerate(merges[: count - clusters]):
        top[a] = top[b] = count + i
    for node in range(count + len(merges) - 1, -1, -1):  # a node's parent is numbered after it
        top[node] = top[top[node]]
    return top[:count]


def _speech(clusters: npt.NDArray[np.int64], durations: npt.NDArray[np.float64]) -> dict[int, float]:
    return {int(c): float(durations[clusters == c].sum()) for c in np.unique(clusters)}


def _dissolve(
    embeddings: npt.NDArray[np.float64],
    durations: npt.NDArray[np.float64],
    clusters: npt.NDArray[np.int64],
    kept: list[int],
) -> npt.NDArray[np.int64]:
    """Rows of clusters not ``kept`` moved to the kept cluster whose centroid (the
    duration-weighted mean of its rows' embeddings) is most similar."""
    centroids = np.stack([(embeddings[clusters == c] * durations[clusters == c, None]).sum(axis=0) for c in kept])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    nearest = np.array(kept, dtype=np.int64)[np.argmax(embeddings @ centroids.T, axis=1)]
    return np.where(np.isin(clusters, kept), clusters, nearest)


__all__ = ["MIN_SPEAKER_S", "THRESHOLD", "WINDOW_S", "Span", "Turn", "diarize", "turns", "windows"]
