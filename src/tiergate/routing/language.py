"""A tiny, dependency-free guess of a prompt's language (ISO 639-1), good enough for routing.

Non-Latin scripts are recognised by their Unicode blocks; Latin-script languages by
counting a handful of very common function words. Only a short sample is examined.
"""

from __future__ import annotations

SAMPLE_CHARS = 400

# (first code point, last code point, language); kana before CJK so Japanese wins over Chinese.
_BLOCKS = (
    (0x3040, 0x30FF, "ja"),
    (0xAC00, 0xD7AF, "ko"),
    (0x4E00, 0x9FFF, "zh"),
    (0x0400, 0x04FF, "ru"),
    (0x0600, 0x06FF, "ar"),
    (0x0590, 0x05FF, "he"),
    (0x0900, 0x097F, "hi"),
    (0x0370, 0x03FF, "el"),
    (0x0E00, 0x0E7F, "th"),
)

_FUNCTION_WORDS = {
    "en": (" the ", " and ", " is ", " of ", " to ", " you ", " what ", " how "),
    "es": (" el ", " los ", " que ", " por ", " una ", " del ", " es ", " cómo "),
    "fr": (" le ", " les ", " des ", " est ", " et ", " une ", " pas ", " vous "),
    "de": (" der ", " die ", " und ", " das ", " ist ", " nicht ", " ich ", " wie "),
    "pt": (" não ", " uma ", " com ", " os ", " você ", " do ", " em ", " é "),
    "it": (" il ", " che ", " di ", " è ", " per ", " non ", " sono ", " gli "),
    "nl": (" het ", " een ", " en ", " van ", " niet ", " ik ", " zijn ", " wat "),
}


def detect_language(text: str) -> str:
    """The most likely language code of `text`, or "" when there is too little to tell."""
    sample = text[:SAMPLE_CHARS]
    if not sample.isascii():
        counts: dict[str, int] = {}
        for ch in sample:
            code = ord(ch)
            if code < 0x0370:
                continue
            for first, last, lang in _BLOCKS:
                if first <= code <= last:
                    counts[lang] = counts.get(lang, 0) + 1
                    break
        if counts:
            if counts.get("ja"):
                return "ja"
            lang, n = max(counts.items(), key=lambda kv: kv[1])
            if n * 4 >= len(sample.replace(" ", "")) or n >= 20:
                return lang
    padded = f" {sample.lower()} "
    best, best_hits = "", 0
    for lang, words in _FUNCTION_WORDS.items():
        hits = sum(padded.count(w) for w in words)
        if hits > best_hits:
            best, best_hits = lang, hits
    return best if best_hits >= 2 else ""
