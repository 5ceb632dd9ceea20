"""What a statement speaks of, and whether it rules that out.

A clinical negation is a cue with a scope ("No LV thrombus.", "RV not dilated";
NegEx, Chapman et al., J Biomed Inform 2001). A sentence encoder pretrained for
paraphrase reads "RV not dilated." and "Dilated RV." as near neighbours: the cue is
one token among several. So the text tower encodes a negated statement as its
affirmed form and projects it with a head of its own: what is ruled out and what is
found land in the shared space independently.
"""

from __future__ import annotations

import re

# The first negation cue of a statement: "No LGE.", "LV not dilated", "There is no effusion".
_NEGATION = re.compile(r"\b(no|not)\s+", re.IGNORECASE)
# Before its cue, what ends a negation's scope: a clause boundary, or a conjunction
# after which the cue rules out only a part ("Dilated LV with no LGE.").
_SCOPE_BREAK = re.compile(r"[,:;(]|\b(?:with|and|but)\b", re.IGNORECASE)


def affirmed(statement: str) -> str | None:
    """The statement with its first negation cue removed; None when it negates nothing."""
    cue = _NEGATION.search(statement)
    return None if cue is None else _without(statement, cue)


def _without(statement: str, cue: re.Match[str]) -> str:
    return capitalised(statement[: cue.start()] + statement[cue.end() :])


def split_negation(texts: list[str]) -> tuple[list[str], list[bool]]:
    """(what each text speaks of, whether it rules that out). A cue negates a whole text
    only when nothing it could leave affirmed comes first: "Moderate pericardial
    effusion, no tamponade features." and "Dilated LV with no LGE." state findings."""
    contents, negated = [], []
    for text in texts:
        cue = _NEGATION.search(text)
        content = None
        if cue is not None and not _SCOPE_BREAK.search(text[: cue.start()]):
            content = _without(text, cue)  # the cue negates the whole text
        if content and content.strip(" ."):
            contents.append(content)
            negated.append(True)
        else:
            contents.append(text)
            negated.append(False)
    return contents, negated


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
