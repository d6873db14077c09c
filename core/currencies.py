"""ISO 4217 currencies in circulation and their minor-unit exponents.

The exponent says how many minor units make one major unit (10**exponent): USD 2 (cents),
JPY 0, KWD 3 (fils). Babel's CLDR data rounds some currencies differently for display
(IQD, for instance), so the exponent that money is *stored* in comes from this table, not Babel.
"""

from __future__ import annotations

_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP "
    "GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP "
    "LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR "
    "NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN "
    "SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR "
    "ZMW ZWG"
)

EXPONENTS: dict[str, int] = {
    **{code: 2 for code in _TWO.split()},
    **{code: 0 for code in _ZERO.split()},
    **{code: 3 for code in _THREE.split()},
    **{code: 4 for code in _FOUR.split()},
}

CURRENCY_CHOICES = [(code, code) for code in sorted(EXPONENTS)]


class UnknownCurrencyError(ValueError):
    """Raised for a code that is not an ISO 4217 currency in circulation."""


def normalize_currency(code: str) -> str:
    """Return the upper-case code, or raise ``UnknownCurrencyError`` naming it."""
    normalized = (code or "").strip().upper()
    if normalized not in EXPONENTS:
        raise UnknownCurrencyError(f"Unknown currency code: {code!r}.")
    return normalized


def currency_exponent(code: str) -> int:
    return EXPONENTS[normalize_currency(code)]
