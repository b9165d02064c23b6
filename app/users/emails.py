"""How an email address becomes an account's identity: the one rule, used by registration, both
login endpoints, the CLI and every lookup, so that one person's address is one account.

In the spirit of RFC 8265 (PRECIS, UsernameCaseMapped): compatibility normalization (NFKC, so
full-width letters are plain ones and a decomposed accent is the composed one) and Unicode
default case folding for the local part; the domain in its IDNA (UTS #46) form, as
email-validator gives it (so `xn--bcher-kva.example` and `BÜCHER.example` are one domain).
The result is stored, and is what the API shows.
"""

import unicodedata

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 320


def _fold(text: str) -> str:
    # NFKC and case folding each can undo the other's fixed point for a few characters; repeat
    # until stable so that normalizing a normalized address changes nothing.
    for _ in range(4):
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
        if folded == text:
            break
        text = folded
    return text


def normalize_email(raw: str) -> str:
    """The canonical form of an address; ValueError when it is not a valid email address."""
    try:
        # NFKC on the whole address first (a full-width at sign, U+FF20, is an `@`); case
        # folding on the local part only: the domain's case mapping is IDNA's (it keeps `ß`).
        parsed = validate_email(
            unicodedata.normalize("NFKC", raw.strip()), check_deliverability=False
        )
        canonical = validate_email(
            f"{_fold(parsed.local_part)}@{parsed.domain}", check_deliverability=False
        ).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None
    if len(canonical) > MAX_EMAIL_LENGTH:
        raise ValueError(f"value is not a valid email address: longer than {MAX_EMAIL_LENGTH}")
    return canonical
