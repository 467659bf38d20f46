"""Meeting notes from scripted transcripts: sentences, summary, topics, decisions and action items."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from pipeline.algos.notes import Item, Sentence, items, sentences, summary, topics

# --------------------------------------------------------------------------------------------
# Scripted transcripts


def _segment(
    start: float, text: str, speaker: str | None = "S1", language: str = "en", timed: bool = True
) -> dict[str, Any]:
    """A segment as ``livesub transcribe`` writes it, each word 0.5 s after the one before and
    0.4 s long; ``timed=False`` leaves the words out (a translated segment)."""
    words = [
        {"word": word, "start": round(start + 0.5 * i, 2), "end": round(start + 0.5 * i + 0.4, 2), "probability": 0.9}
        for i, word in enumerate(text.split())
    ]
    segment: dict[str, Any] = {
        "id": 0,
        "start": start,
        "end": round(start + 0.5 * len(words), 2),
        "text": text,
        "language": language,
    }
    if speaker is not None:
        segment["speaker"] = speaker
    if timed:
        segment["words"] = words
    return segment


def _said(texts: list[str], language: str, speaker: str | None = "S1") -> list[Sentence]:
    """One sentence every 5 s."""
    return [Sentence(text, 5.0 * i, 5.0 * i + 4.5, speaker, language) for i, text in enumerate(texts)]


MARKETING = [
    "Okay, let's start with the marketing budget for the spring campaign.",
    "The marketing budget is forty thousand euros this quarter.",
    "Most of the campaign budget goes to online ads and social media.",
    "Last spring the online ads brought in most of the new customers.",
    "I think the social media campaign should get a bigger share of the budget.",
    "Yes.",
    "The ads on video platforms cost more but the campaign numbers were better.",
    "So we could move some budget from print ads to video ads.",
    "Print ads did not bring many customers last year.",
    "Right, the campaign needs fewer print ads.",
    "I'll send the budget report on Friday.",
]
OFFICE_MOVE = [
    "Next, the office move in June.",
    "The new office has room for forty desks and two meeting rooms.",
    "The movers need the floor plan of the new office two weeks before the move.",
    "Okay.",
    "Someone has to pack the servers and the network equipment before the move.",
    "The network cables in the new office are already installed.",
    "The desks and chairs will arrive at the new office on the first of June.",
    "Maria will book the movers for the last weekend of May.",
    "We should label every desk and box with its new room number.",
    "Good, the office move is settled then.",
]
PRESUPUESTO = [
    "Bueno, empezamos con el presupuesto de la campaña de primavera.",
    "El presupuesto de marketing es de cuarenta mil euros este trimestre.",
    "La mayor parte del presupuesto de la campaña va a anuncios en redes sociales.",
    "La primavera pasada los anuncios en redes sociales trajeron muchos clientes nuevos.",
    "Vale.",
    "Los anuncios en vídeo cuestan más, pero la campaña tuvo mejores resultados.",
    "Podemos pasar parte del presupuesto de los anuncios impresos a los anuncios en vídeo.",
    "Los anuncios impresos trajeron pocos clientes el año pasado.",
    "Maria enviará el informe del presupuesto el viernes.",
]
MUDANZA = [
    "Ahora, la mudanza de la oficina en junio.",
    "La nueva oficina tiene sitio para cuarenta mesas y dos salas de reuniones.",
    "La empresa de mudanzas necesita el plano de la nueva oficina dos semanas antes.",
    "Hay que embalar los servidores y el equipo de red antes de la mudanza.",
    "Los cables de red de la nueva oficina ya están instalados.",
    "Las mesas y las sillas llegan a la nueva oficina el uno de junio.",
    "Vale, perfecto.",
    "Cada mesa y cada caja lleva el número de su nueva sala.",
    "Bien, la mudanza de la oficina queda organizada.",
]
#: One subject whose talk drifts (password resets, the help centre, billing tickets).
SUPPORT = [
    "Let's talk about the customer support backlog.",
    "The support backlog grew to three hundred tickets this month.",
    "Most tickets are about password resets and login problems.",
    "Password resets could be automated with a self service page.",
    "The login problems come from the new mobile app release.",
    "Okay.",
    "The mobile app team knows about the login bug and has a fix ready.",
    "Once the fix ships the login tickets should drop quickly.",
    "Support staff spend about ten minutes on each password reset ticket.",
    "A self service reset page would save the support team many hours.",
    "We could also add answers about login problems to the help center.",
    "The help center gets few visits because customers cannot find it.",
    "A link to the help center in the app would help customers with login problems.",
    "Right.",
    "Ticket volume on weekends is low so weekend support can stay small.",
    "The backlog should shrink once password resets and login tickets drop.",
    "We need to measure the backlog again at the end of the month.",
    "Customers also complain about slow answers to billing tickets.",
    "Billing tickets need someone from finance to answer them.",
    "Maybe a finance person could join the support team two days a week.",
]


# --------------------------------------------------------------------------------------------
# Sentences


def test_sentences_are_split_at_their_ends_and_timed_by_their_words() -> None:
    found = sentences([_segment(10.0, "Hello everyone. Shall we start? Yes!")])
    assert [s.text for s in found] == ["Hello everyone.", "Shall we start?", "Yes!"]
    assert [(s.start, s.end) for s in found] == [(10.0, 10.9), (11.0, 12.4), (12.5, 12.9)]
    assert all(s.speaker == "S1" and s.language == "en" for s in found)


def test_a_sentence_runs_on_into_the_next_segment_of_the_same_speaker() -> None:
    found = sentences(
        [
            _segment(0.0, "We looked at the numbers and"),
            _segment(8.0, "they are fine. Next point."),
        ]
    )
    assert [s.text for s in found] == ["We looked at the numbers and they are fine.", "Next point."]
    assert (found[0].start, found[0].end) == (0.0, 9.4)  # first word of one segment, last of the next
    assert (found[1].start, found[1].end) == (9.5, 10.4)


def test_a_sentence_never_runs_on_across_a_change_of_speaker() -> None:
    found = sentences(
        [
            _segment(0.0, "So the plan is", speaker="S1"),
            _segment(2.5, "sounds good to me.", speaker="S2"),
            _segment(5.0, "to ship in May.", speaker="S1"),
        ]
    )
    assert [(s.text, s.speaker) for s in found] == [
        ("So the plan is", "S1"),
        ("sounds good to me.", "S2"),
        ("to ship in May.", "S1"),
    ]
    assert (found[0].start, found[0].end) == (0.0, 1.9)


def test_titles_initials_numbers_and_abbreviations_do_not_end_a_sentence() -> None:
    text = (
        "Mr. Smith and Dr. Weber agreed on 3.5 percent, e.g. for the a.c. units, J. K. Rowling too. "
        "We go with option B. Then we stop… Done etc. Later."
    )
    assert [s.text for s in sentences([_segment(0.0, text)])] == [
        "Mr. Smith and Dr. Weber agreed on 3.5 percent, e.g. for the a.c. units, J. K. Rowling too.",
        "We go with option B.",
        "Then we stop…",
        "Done etc.",
        "Later.",
    ]


def test_trailing_off_and_dates_and_quotes() -> None:
    assert [s.text for s in sentences([_segment(0.0, "So... we wait. He said “stop.” Then we left.")])] == [
        "So... we wait.",
        "He said “stop.”",
        "Then we left.",
    ]
    german = _segment(0.0, "Wir treffen uns am 3. März wieder. Gut.", language="de")
    assert [s.text for s in sentences([german])] == ["Wir treffen uns am 3. März wieder.", "Gut."]


def test_segments_without_words_are_timed_by_the_segment() -> None:
    found = sentences(
        [
            _segment(0.0, "First part without words, and", timed=False),  # 0.0-2.5
            _segment(3.0, "the end. A new one."),
            _segment(6.0, "Two sentences. In one segment.", timed=False),  # 6.0-8.5
        ]
    )
    assert [(s.text, s.start, s.end) for s in found] == [
        ("First part without words, and the end.", 0.0, 3.9),
        ("A new one.", 4.0, 5.4),
        ("Two sentences.", 6.0, 8.5),
        ("In one segment.", 6.0, 8.5),
    ]


def test_a_turn_without_a_final_stop_is_a_sentence_and_no_speaker_is_none() -> None:
    found = sentences([_segment(0.0, "well I think", speaker=None, language="es")])
    assert found == [Sentence("well I think", 0.0, 1.4, None, "es")]
    assert sentences([]) == []
    assert sentences([_segment(0.0, "   ")]) == []


# --------------------------------------------------------------------------------------------
# Summary

CENTRAL = [
    "The campaign pays for the posters.",
    "Video ads cost more this year.",
    "Okay, budget.",
    "My cat sleeps in the garden all afternoon.",
    "The campaign budget covers video ads.",
    "We need a bigger budget.",
]


def test_summary_picks_the_sentence_sharing_most_with_the_others() -> None:
    said = _said(CENTRAL, "en")
    assert summary(said, "en", count=1) == [said[4]]
    # In time order; the unrelated sentence is the one left out, the two-word one is never in.
    assert summary(said, "en", count=4) == [said[0], said[1], said[4], said[5]]
    assert summary(said, "en", count=10) == [said[0], said[1], said[3], said[4], said[5]]


def test_summary_is_deterministic_and_in_time_order() -> None:
    said = _said(MARKETING + OFFICE_MOVE, "en")
    first = summary(said, "en")
    assert first == summary(list(said), "en") == summary(tuple(said), "en")
    assert len(first) == 5
    assert [s.start for s in first] == sorted(s.start for s in first)
    assert all(len(s.text.split()) >= 4 for s in first)
    # Both subjects of the meeting are in it.
    assert any("budget" in s.text or "ads" in s.text for s in first)
    assert any("office" in s.text for s in first)


def test_summary_ties_go_to_the_earlier_sentence_and_repeats_are_left_out() -> None:
    unrelated = _said(["Apples and pears grow well here.", "Trains and buses run late tonight."], "en")
    assert summary(unrelated, "en", count=1) == [unrelated[0]]
    repeated = _said(
        [
            "The campaign budget pays for the video ads.",
            "The campaign budget pays for the video ads, yes.",
            "Print ads brought few customers.",
            "The video campaign brought many customers.",
        ],
        "en",
    )
    picked = summary(repeated, "en", count=2)
    assert len(picked) == 2 and not {repeated[0], repeated[1]} <= set(picked)


def test_summary_in_spanish_leaves_out_stop_words_and_fillers() -> None:
    said = _said([*PRESUPUESTO, "Sí, claro, vale, bueno, pues eso es."], "es")
    picked = summary(said, "es", count=2)
    assert [s.text for s in picked] == [
        "La mayor parte del presupuesto de la campaña va a anuncios en redes sociales.",
        "Podemos pasar parte del presupuesto de los anuncios impresos a los anuncios en vídeo.",
    ]
    assert said[-1] not in summary(said, "es", count=20)  # all stop words and fillers: nothing to rank


def test_summary_of_nothing() -> None:
    assert summary([], "en") == []
    assert summary(_said(["Okay.", "Yes, sure."], "en"), "en") == []
    assert summary(_said(CENTRAL, "en"), "en", count=0) == []


# --------------------------------------------------------------------------------------------
# Topics


@pytest.mark.parametrize(
    ("first", "second", "language", "first_words", "second_words"),
    [
        (MARKETING, OFFICE_MOVE, "en", {"budget", "campaign", "ads"}, {"office", "move"}),
        (PRESUPUESTO, MUDANZA, "es", {"presupuesto", "campaña", "anuncios"}, {"oficina", "mudanza"}),
    ],
)
def test_topics_change_where_the_subject_does(
    first: list[str], second: list[str], language: str, first_words: set[str], second_words: set[str]
) -> None:
    said = _said(first + second, language)
    found = topics(said, language)
    assert [len(t.sentences) for t in found] == [len(first), len(second)]
    assert found[0].sentences == tuple(said[: len(first)])
    assert (found[0].start, found[0].end) == (0.0, 5.0 * (len(first) - 1) + 4.5)
    assert (found[1].start, found[1].end) == (5.0 * len(first), 5.0 * (len(said) - 1) + 4.5)
    for topic, expected in zip(found, (first_words, second_words), strict=True):
        assert 3 <= len(topic.keywords) <= 5
        assert expected <= set(topic.keywords)
    assert not set(found[0].keywords) & set(found[1].keywords)


def test_fillers_before_a_new_subject_stay_with_the_one_before() -> None:
    said = _said([*MARKETING, "Okay.", "Yeah, sure.", *OFFICE_MOVE], "en")
    found = topics(said, "en")
    assert [t.sentences[0].text for t in found] == [MARKETING[0], OFFICE_MOVE[0]]
    assert found[0].sentences[-1].text == "Yeah, sure."


def test_one_subject_or_a_short_meeting_is_one_topic() -> None:
    said = _said(SUPPORT, "en")
    (topic,) = topics(said, "en")
    assert topic.sentences == tuple(said)
    assert (topic.start, topic.end) == (0.0, 99.5)
    assert {"tickets", "login", "support"} <= set(topic.keywords)
    short = _said(MARKETING[:3] + OFFICE_MOVE[:3], "en")
    assert len(topics(short, "en")) == 1
    assert topics([], "en") == []
    (fillers,) = topics(_said(["Okay.", "Yes."], "en"), "en")
    assert fillers.keywords == ()


def test_topics_are_deterministic() -> None:
    said = _said(PRESUPUESTO + MUDANZA, "es")
    assert topics(said, "es") == topics(list(said), "es")


# --------------------------------------------------------------------------------------------
# Decisions and action items

Kind = Literal["decision", "action"]
# (language, speaker, sentence, kind, owner, due)
CUES: list[tuple[str, str | None, str, Kind, str | None, str | None]] = [
    # English
    ("en", "S2", "I'll send the report on Friday.", "action", "S2", "on Friday"),
    ("en", "S2", "i’ll send the report on friday", "action", "S2", "on friday"),  # no case, curly apostrophe
    ("en", "S1", "I will update the slides by the end of the month.", "action", "S1", "by the end of the month"),
    ("en", "S1", "Maria will send the budget tomorrow.", "action", "Maria", "tomorrow"),
    ("en", "S1", "Perfect, John'll book the room for next week.", "action", "John", "for next week"),
    ("en", "S1", "Maria and John will prepare the slides by March 3.", "action", "Maria and John", "by March 3"),
    ("en", "S1", "Can you, John, check the numbers by Monday?", "action", "John", "by Monday"),
    ("en", "S1", "Anna, could you call the client?", "action", "Anna", None),
    ("en", "S1", "We need to update the roadmap before Thursday.", "action", None, "before Thursday"),
    ("en", "S1", "Let's review the contract in two weeks.", "action", None, "in two weeks"),
    ("en", "S1", "Action item: renew the licence.", "action", None, None),
    ("en", "S1", "The invoice is due by Friday.", "action", None, "by Friday"),
    ("en", "S1", "We decided to go with the cheaper vendor.", "decision", None, None),
    ("en", "S1", "We agreed that Maria will call the vendor on Monday.", "decision", "Maria", "on Monday"),
    ("en", "S1", "Let's go with option B.", "decision", None, None),
    ("en", "S1", "The decision is to keep the old server.", "decision", None, None),
    ("en", "S1", "We decided not to hire this year.", "decision", None, "this year"),
    # Spanish
    ("es", "S1", "Maria enviará el informe el viernes.", "action", "Maria", "el viernes"),
    ("es", "S2", "Voy a preparar la presentación para el lunes.", "action", "S2", "para el lunes"),
    ("es", "S2", "Me encargo de llamar al cliente mañana.", "action", "S2", "mañana"),
    ("es", "S2", "Enviaré el presupuesto la próxima semana.", "action", "S2", "la próxima semana"),
    ("es", "S1", "Tenemos que revisar el contrato antes del jueves.", "action", None, "antes del jueves"),
    ("es", "S1", "Hay que actualizar la web a fin de mes.", "action", None, "a fin de mes"),
    ("es", "S1", "Juan, ¿puedes enviar las cifras?", "action", "Juan", None),
    ("es", "S1", "El informe tiene que estar listo hasta el 3 de marzo.", "action", None, "hasta el 3 de marzo"),
    ("es", "S1", "Decidimos contratar a otra persona.", "decision", None, None),
    ("es", "S1", "Acordamos cambiar de proveedor.", "decision", None, None),
    # German
    ("de", "S2", "Ich werde den Bericht bis Freitag schicken.", "action", "S2", "bis Freitag"),
    ("de", "S2", "Ich schicke dir die Zahlen morgen.", "action", "S2", "morgen"),
    ("de", "S1", "Wir müssen das Budget prüfen.", "action", None, None),
    ("de", "S1", "Bis Freitag muss der Bericht fertig sein.", "action", None, "Bis Freitag"),
    ("de", "S1", "Maria wird die Folien bis Ende des Monats vorbereiten.", "action", "Maria", "bis Ende des Monats"),
    ("de", "S1", "Dann schickt Maria den Vertrag am 3. März.", "action", "Maria", "am 3. März"),
    ("de", "S1", "Kannst du, Peter, das bis nächste Woche klären?", "action", "Peter", "bis nächste Woche"),
    ("de", "S1", "Wir haben beschlossen, den Anbieter zu wechseln.", "decision", None, None),
    ("de", "S1", "Wir einigen uns auf Variante B.", "decision", None, None),
    # French
    ("fr", "S2", "Je vais envoyer le rapport d'ici vendredi.", "action", "S2", "d'ici vendredi"),
    ("fr", "S2", "Je m’occupe de la réservation demain.", "action", "S2", "demain"),
    ("fr", "S2", "J'enverrai les chiffres le 3 mars.", "action", "S2", "le 3 mars"),
    ("fr", "S1", "Il faut mettre à jour le site.", "action", None, None),
    ("fr", "S1", "Nous devons revoir le budget avant la fin du mois.", "action", None, "avant la fin du mois"),
    ("fr", "S1", "Marie enverra le contrat la semaine prochaine.", "action", "Marie", "la semaine prochaine"),
    ("fr", "S1", "Pierre, tu peux appeler le client ?", "action", "Pierre", None),
    ("fr", "S1", "Nous avons décidé de changer de fournisseur.", "decision", None, None),
    ("fr", "S1", "On a décidé de reporter la réunion.", "decision", None, None),
    # Portuguese
    ("pt", "S2", "Vou enviar o relatório até sexta.", "action", "S2", "até sexta"),
    ("pt", "S2", "Eu vou enviar o orçamento amanhã.", "action", "S2", "amanhã"),
    ("pt", "S2", "Enviarei os números dia 3 de março.", "action", "S2", "dia 3 de março"),
    ("pt", "S1", "Precisamos revisar o contrato na próxima semana.", "action", None, "na próxima semana"),
    ("pt", "S1", "Temos que atualizar o site.", "action", None, None),
    ("pt", "S1", "Vamos escolher a segunda opção amanhã.", "action", None, "amanhã"),  # "a segunda" is not Monday
    ("pt", "S1", "O contrato tem que estar pronto até a sexta.", "action", None, "até a sexta"),
    ("pt", "S1", "Maria vai preparar os slides até o fim do mês.", "action", "Maria", "até o fim do mês"),
    ("pt", "S1", "Ana enviará o contrato na segunda-feira.", "action", "Ana", "na segunda-feira"),
    ("pt", "S1", "Decidimos trocar de fornecedor.", "decision", None, None),
    ("pt", "S1", "Ficou decidido que a reunião será adiada.", "decision", None, None),
]


@pytest.mark.parametrize(("language", "speaker", "text", "kind", "owner", "due"), CUES)
def test_items_from_cue_phrases(
    language: str, speaker: str | None, text: str, kind: Kind, owner: str | None, due: str | None
) -> None:
    said = Sentence(text, 12.0, 15.5, speaker, language)
    assert items([said], language) == [Item(kind, text, 12.0, 15.5, owner, due, speaker)]


PLAIN = [
    ("en", "The weather was nice yesterday."),
    ("en", "I will not do that."),
    ("en", "Let's see what happens."),
    ("en", "Well, we'll see."),
    ("en", "The Board will meet in two weeks."),
    ("en", "Did we agree on the price?"),
    ("en", "WE TALKED TO THE CLIENT."),
    ("es", "El tiempo fue bueno ayer."),
    ("es", "Maria espera el informe."),
    ("es", "No voy a hacer eso."),
    ("es", "Vamos a ver qué pasa."),
    ("es", "Esta mañana hablé con el cliente."),
    ("de", "Das Wetter war gestern schön."),
    ("de", "Der Bericht wird lang."),
    ("de", "Guten Morgen zusammen."),
    ("de", "Ich werde nicht kommen."),
    ("fr", "Le temps était beau hier."),
    ("fr", "On va voir."),
    ("fr", "Je ne vais pas le faire."),
    ("pt", "O tempo estava bom ontem."),
    ("pt", "Não vou fazer isso."),
    ("pt", "Até sexta!"),
    ("pt", "A segunda opção é melhor."),
    ("pt", "Maria espera o relatório."),
]


@pytest.mark.parametrize(("language", "text"), PLAIN)
def test_no_item_from_plain_sentences(language: str, text: str) -> None:
    assert items([Sentence(text, 0.0, 1.0, "S1", language)], language) == []


def test_items_from_a_transcript_in_time_order() -> None:
    segments = [
        _segment(0.0, "Buenos días a todos.", "S1", "es"),
        _segment(2.0, "Maria enviará el informe", "S1", "es"),
        _segment(5.0, "el viernes. El cliente está contento.", "S1", "es"),
        _segment(9.0, "Acordamos cambiar de proveedor.", "S2", "es"),
    ]
    found = items(sentences(segments), "es")
    assert found == [
        Item("action", "Maria enviará el informe el viernes.", 2.0, 5.9, "Maria", "el viernes", "S1"),
        Item("decision", "Acordamos cambiar de proveedor.", 9.0, 10.9, None, None, "S2"),
    ]


def test_each_sentence_is_read_in_its_own_language() -> None:
    mixed = [
        Sentence("Ich werde den Bericht schicken.", 0.0, 1.0, "S1", "de"),
        Sentence("Voy a llamar al cliente.", 1.0, 2.0, "S2", ""),  # no language: the meeting's
        Sentence("Vou ligar para o cliente.", 2.0, 3.0, "S3", "pt-BR"),
    ]
    assert [(i.owner, i.kind) for i in items(mixed, "es")] == [("S1", "action"), ("S2", "action"), ("S3", "action")]
    assert [i.owner for i in items(mixed, "en")] == ["S1", "S3"]  # "Voy a" is nothing in English
    assert items([Sentence("I'll send it.", 0.0, 1.0, "S1", "")], "ja") == []
