"""Synthetic callers: who they are (the mix) and what each says at each stage of the dialogue.

Decisions are pure: a caller gets the stage it hears and an explicit ``random.Random``, and
returns its next move. The phrases are the kind real callers use and the engine's parsers
understand (or, for the difficult callers, deliberately do not).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from service.tools.dialogue import Stage
from service.tools.transport import ToolError


class Behaviour(StrEnum):
    """Kinds of synthetic callers (``--mix`` keys)."""

    COOPERATIVE = "cooperative"  # answers every question at once
    HESITANT = "hesitant"  # "euh…" before answering
    REJECTS = "rejects"  # "aucun ne me va" twice, then chooses
    BAD_PHONE = "bad_phone"  # caller id withheld, then an unusable number
    FAQ = "faq"  # asks where the practice is while choosing a slot
    INTERRUPTS = "interrupts"  # chooses a slot while the list is being read (barge-in)
    HANGS_UP = "hangs_up"  # hangs up in the middle of the booking
    RACER = "racer"  # two callers choose the same first slot at the same moment


DEFAULT_MIX = (
    "cooperative=50,hesitant=10,rejects=10,bad_phone=5,faq=10,interrupts=5,hangs_up=5,racer=5"
)
OPENING = (
    "Bonjour, je voudrais prendre rendez-vous.",
    "Oui bonjour, c'est pour un rendez-vous s'il vous plaît.",
    "Bonjour, j'aimerais prendre un rendez-vous.",
)
NAMES = (
    "Jean Dupont", "Marie Durand", "Lucas Martin", "Claire Bernard", "Paul Moreau",
    "Sophie Laurent", "Hugo Lefebvre", "Camille Girard", "Louis Roux", "Emma Fournier",
)
PREFERENCES = ("le matin", "plutôt l'après-midi", "pas de préférence", "peu importe")
CHOICES = ("le premier", "le deuxième", "le troisième", "la deuxième", "le 2")
FILLERS = ("euh", "hum", "euh attendez", "allô ?")
REJECTIONS = ("aucun ne me va", "non, aucun de ceux-là")
FAQS = ("au fait, c'est où le cabinet ?", "c'est combien la consultation ?", "il y a un parking ?")
BAD_NUMBERS = ("douze douze", "je sais plus", "trois quatre", "c'est le zéro six… je sais plus")
MAX_STAGE_VISITS = 6


def parse_mix(text: str) -> dict[Behaviour, int]:
    """``"cooperative=50,hesitant=10"`` → weights; ToolError naming a bad part."""
    mix: dict[Behaviour, int] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        try:
            behaviour = Behaviour(key.strip())
        except ValueError:
            known = ", ".join(b.value for b in Behaviour)
            raise ToolError(f"--mix: unknown caller kind {key.strip()!r} (known: {known})") from None
        if not sep or not value.strip().isdigit():
            raise ToolError(f"--mix: {part!r} must be kind=weight with a whole weight")
        mix[behaviour] = mix.get(behaviour, 0) + int(value)
    if not mix or sum(mix.values()) == 0:
        raise ToolError("--mix: give at least one kind with a weight above 0")
    return mix


def allocate(mix: Mapping[Behaviour, int], calls: int, rng: random.Random) -> list[Behaviour]:
    """Exactly ``calls`` behaviours in the mix's proportions (largest remainder), shuffled."""
    total = sum(mix.values())
    exact = {b: calls * w / total for b, w in mix.items()}
    counts = {b: int(x) for b, x in exact.items()}
    rest = calls - sum(counts.values())
    for b in sorted(exact, key=lambda b: (-(exact[b] - counts[b]), list(mix).index(b)))[:rest]:
        counts[b] += 1
    out = [b for b, c in counts.items() for _ in range(c)]
    rng.shuffle(out)
    return out


def spoken_number(e164: str) -> str:
    """"+33612345678" → "06 12 34 56 78", as a caller says it."""
    national = "0" + e164[3:] if e164.startswith("+33") else e164
    return " ".join(national[i:i + 2] for i in range(0, len(national), 2))


@dataclass(frozen=True, slots=True)
class Move:
    """What the caller does next: say ``text`` (None: hang up)."""

    text: str | None
    interrupted: bool = False
    race: bool = False  # wait for the racing partner before saying it


HANG_UP = Move(None)


@dataclass
class Caller:
    """One synthetic caller's memory of its call."""

    behaviour: Behaviour
    rng: random.Random
    name: str
    phone: str  # the number the caller would give when asked
    hang_up_at: Stage = Stage.SLOTS
    visits: dict[Stage, int] = field(default_factory=dict)

    @property
    def caller_id(self) -> str | None:
        """The number the network shows: withheld for callers who give a bad one."""
        return None if self.behaviour is Behaviour.BAD_PHONE else self.phone

    @classmethod
    def create(cls, behaviour: Behaviour, rng: random.Random, phone: str) -> Caller:
        """A caller of this kind with a name and, for hang-ups, the stage it leaves at."""
        stage = rng.choice((Stage.NAME, Stage.PREFERENCE, Stage.SLOTS))
        return cls(behaviour, rng, rng.choice(NAMES), phone, stage)

    def opening(self) -> Move:
        """The first words of the call."""
        return Move(self.rng.choice(OPENING))

    def next(self, stage: Stage) -> Move:
        """The answer to the stage the assistant left the call in (never for terminal ones)."""
        seen = self.visits.get(stage, 0)
        self.visits[stage] = seen + 1
        b = self.behaviour
        if seen >= MAX_STAGE_VISITS:
            return HANG_UP
        if b is Behaviour.HANGS_UP and stage is self.hang_up_at:
            return HANG_UP
        if b is Behaviour.HESITANT and seen == 0 and stage in (Stage.NAME, Stage.PREFERENCE, Stage.SLOTS):
            return Move(self.rng.choice(FILLERS))
        if stage is Stage.START:
            return Move(self.rng.choice(OPENING)) if seen < 2 else HANG_UP
        if stage is Stage.NAME:
            return Move(self.name)
        if stage is Stage.PREFERENCE:
            return Move("pas de préférence" if b is Behaviour.RACER else self.rng.choice(PREFERENCES))
        if stage is Stage.SLOTS:
            return self._slots(seen)
        if stage is Stage.PHONE:
            if b is Behaviour.BAD_PHONE:
                return Move(self.rng.choice(BAD_NUMBERS))
            return Move(spoken_number(self.phone))
        if stage is Stage.MENU:
            return Move("1") if seen == 0 else HANG_UP
        # Cancel or modify questions, or a reply not understood: not what this caller called for.
        return HANG_UP

    def _slots(self, seen: int) -> Move:
        b = self.behaviour
        if b is Behaviour.REJECTS and seen < len(REJECTIONS):
            return Move(REJECTIONS[seen])
        if b is Behaviour.FAQ and seen == 0:
            return Move(self.rng.choice(FAQS))
        if b is Behaviour.INTERRUPTS and seen == 0:
            return Move(self.rng.choice(("le premier", "le deuxième")), interrupted=True)
        if b is Behaviour.RACER and seen == 0:
            return Move("le premier", race=True)
        return Move(self.rng.choice(CHOICES))
