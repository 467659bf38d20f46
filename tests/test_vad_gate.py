from __future__ import annotations

from pipeline.algos.vad_gate import Boundary, LevelNormaliser, SpeechGate


def _run(gate: SpeechGate, pattern: str, energies: list[float] | None = None) -> list[Boundary]:
    """'#' is a voiced frame, '.' a silent one."""
    out: list[Boundary] = []
    for i, c in enumerate(pattern):
        out += gate.push(c == "#", energies[i] if energies else (1.0 if c == "#" else 0.01))
    return out


def _gate(**kw: int) -> SpeechGate:
    defaults = dict(
        frame_ms=10, start_window_ms=50, start_voiced_ms=30, end_silence_ms=50, pre_roll_ms=20, post_roll_ms=10
    )
    return SpeechGate(**{**defaults, **kw})


def test_a_click_is_not_speech() -> None:
    assert _run(_gate(), "...#......#.....") == []


def test_speech_starts_with_pre_roll_and_ends_after_silence() -> None:
    gate = _gate()
    boundaries = _run(gate, "..........###########.......")
    # Third voiced frame (index 12) opens it; it starts two frames (pre-roll) before the first voiced frame (10).
    assert boundaries == [Boundary("start", 8), Boundary("end", 22)]  # last voiced 20, +1, +1 post-roll
    assert not gate.open


def test_short_pauses_do_not_end_an_utterance() -> None:
    boundaries = _run(_gate(), "....######...######..######........")
    assert [b.kind for b in boundaries] == ["start", "end"]


def test_another_detector_can_end_the_utterance() -> None:
    gate = _gate()
    assert _run(gate, "..######") == [Boundary("start", 0)]
    assert gate.end_at(6) == [Boundary("end", 6)]
    assert not gate.open
    assert gate.end_at(7) == []  # nothing open
    assert _run(gate, "######")[0] == Boundary("start", 6)  # not before the end it was given


def test_next_utterance_never_starts_before_the_previous_end() -> None:
    boundaries = _run(_gate(pre_roll_ms=100), "#####......###...")
    assert boundaries[1].kind == "end"
    assert boundaries[2] == Boundary("start", boundaries[1].frame)


def test_long_speech_is_split_at_the_quietest_recent_frame() -> None:
    pattern = "#" * 120
    energies = [1.0] * 120
    energies[85] = 0.001  # a dip inside the search window (the last 30 frames before frame 100)
    gate = _gate(max_utterance_ms=1000, split_search_ms=300)
    boundaries = _run(gate, pattern, energies)
    assert boundaries[:3] == [Boundary("start", 0), Boundary("end", 85), Boundary("start", 85)]
    assert gate.open


def test_flush_closes_an_open_utterance() -> None:
    gate = _gate()
    assert [b.kind for b in _run(gate, "..#####")] == ["start"]
    assert gate.flush() == [Boundary("end", 7)]
    assert gate.flush() == []


def test_level_normaliser_lifts_quiet_audio_but_not_loud() -> None:
    quiet = LevelNormaliser(frame_ms=30)
    gains = [quiet.gain(1e-5) for _ in range(50)]  # a noise floor at -100 dBFS
    assert gains[-1] == 100.0  # capped at +40 dB
    loud = LevelNormaliser(frame_ms=30)
    assert loud.gain(0.1) == 1.0  # never attenuates
    # The gain follows the floor, not the speech: speech frames do not pull it down.
    normal = LevelNormaliser(frame_ms=30)
    for _ in range(20):
        normal.gain(1e-4)  # floor at -80 dBFS
    assert normal.gain(0.05) == normal.gain(1e-4) == 10.0  # -80 -> -60 dBFS
