"""Find a host's public addresses and where they are, from ipify- and ip-api-style services.

A lookup never raises on network trouble: whatever could be found is returned, each failure is
logged once, and `merge` keeps the last good value of every field a later lookup missed.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

logger = logging.getLogger(__name__)

LOOKUP_TIMEOUT_SECONDS = 3.0
MAX_ANSWER_BYTES = 16 * 1024
SHOWN_VALUE_CHARS = 60


@dataclass(frozen=True)
class Geolocation:
    """A host's public addresses and location; "" where unknown."""

    ipv4: str = ""
    ipv6: str = ""
    coordinates: str = ""
    timezone: str = ""
    country_code: str = ""
    location: str = ""
    isp: str = ""

    def to_dict(self) -> dict[str, str]:
        """Return the fields keyed by name."""
        return asdict(self)


class _LookupError(Exception):
    """One service gave no usable answer; the message says why."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


def lookup(
    ipv4_url: str,
    ipv6_url: str,
    geo_url: str,
    timeout_seconds: float = LOOKUP_TIMEOUT_SECONDS,
    session: requests.Session | None = None,
) -> Geolocation | None:
    """Ask for the public IPv4 and IPv6 addresses, then for the location of the primary one.

    `geo_url` holds "{ip}", replaced by the IPv4 address if there is one, else the IPv6 one.
    Each of the three requests gives up after about `timeout_seconds` (twice that at worst,
    for a server that trickles its answer), so a lookup ends within 6 x `timeout_seconds`.

    Returns:
        What could be found, or None when no public address was found at all.
    """
    http = session or requests.Session()
    try:
        ipv4, ipv6 = find_addresses(ipv4_url, ipv6_url, timeout_seconds, http)
        primary = ipv4 or ipv6
        if not primary:
            return None

        place = find_place(geo_url, primary, timeout_seconds, http)
        return Geolocation(ipv4=ipv4, ipv6=ipv6, **place)
    finally:
        if session is None:
            http.close()


def find_addresses(
    ipv4_url: str, ipv6_url: str, timeout_seconds: float, http: requests.Session
) -> tuple[str, str]:
    """Return the public IPv4 and IPv6 addresses, "" for each that could not be found."""
    return (
        _address(http, ipv4_url, 4, timeout_seconds),
        _address(http, ipv6_url, 6, timeout_seconds),
    )


def find_place(
    geo_url: str, ip: str, timeout_seconds: float, http: requests.Session
) -> dict[str, str]:
    """Return the location fields of `ip` from the service at `geo_url`, or {} if none."""
    return _place(http, geo_url.replace("{ip}", ip), timeout_seconds)


def merge(previous: Geolocation | None, fresh: Geolocation | None) -> Geolocation | None:
    """Return `fresh`, with every field it lacks taken from `previous`."""
    if previous is None or fresh is None:
        return fresh or previous

    names = [field.name for field in fields(Geolocation)]
    return Geolocation(**{name: getattr(fresh, name) or getattr(previous, name) for name in names})


def _address(http: requests.Session, url: str, version: int, timeout_seconds: float) -> str:
    """Return the address a service reports, or "" after logging why there is none."""
    try:
        return _parse_address(_get_json(http, url, timeout_seconds), version)
    except _LookupError as failure:
        # Many hosts have no IPv6 route at all; failing to reach an IPv6-only service is normal.
        level = logging.INFO if version == 6 and failure.unreachable else logging.WARNING
        logger.log(level, "Address lookup at %r: %s", _host(url), failure)
        return ""


def _place(http: requests.Session, url: str, timeout_seconds: float) -> dict[str, str]:
    """Return the location fields for an address, or none after logging why."""
    try:
        return _parse_place(_get_json(http, url, timeout_seconds))
    except _LookupError as failure:
        logger.warning("Geolocation lookup at %r: %s", _host(url), failure)
        return {}


def _get_json(http: requests.Session, url: str, timeout_seconds: float) -> Any:
    """Return the decoded JSON answer of `url`, or raise _LookupError saying what went wrong."""
    try:
        with http.get(url, timeout=timeout_seconds, stream=True) as response:
            if response.status_code == 429:
                raise _LookupError("rate limited (HTTP 429)")
            if response.status_code != 200:
                raise _LookupError(f"HTTP {response.status_code}")
            body = _read_body(response, time.monotonic() + timeout_seconds)
    except requests.Timeout:
        raise _LookupError(f"no answer within {timeout_seconds:g} s") from None
    except requests.ConnectionError:
        raise _LookupError("connection failed", unreachable=True) from None
    except requests.RequestException as error:
        raise _LookupError(f"request failed ({type(error).__name__})") from None

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _LookupError(f"answer is not JSON: {_shown(body)}") from None


def _read_body(response: requests.Response, deadline: float) -> bytes:
    """Read the answer, giving up once it is late or too large to be a lookup answer."""
    # urllib3 keeps reading until a chunk is full, and the read timeout only bounds the gap
    # between two packets, so a server trickling bytes would hold a larger chunk for as long as
    # it likes. One byte at a time checks the deadline at every byte; answers are a few hundred
    # bytes, and the cap keeps the worst case near 0.1 s of CPU.
    body = bytearray()
    for chunk in response.iter_content(1):
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise _LookupError(f"answer larger than {MAX_ANSWER_BYTES} bytes")
        if time.monotonic() > deadline:
            raise _LookupError("answer still arriving at the deadline")
    return bytes(body)


def _parse_address(answer: Any, version: int) -> str:
    """Return the normalised address in an ipify answer {"ip": "..."} of the given version."""
    text = answer.get("ip") if isinstance(answer, dict) else None
    if not isinstance(text, str):
        raise _LookupError(f"answer has no 'ip' text: {_shown(answer)}")

    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _LookupError(f"answer holds no valid address: {_shown(text)}") from None
    if address.version != version:
        raise _LookupError(f"answer {text!r} is not an IPv{version} address")
    return str(address)


def _parse_place(answer: Any) -> dict[str, str]:
    """Return the Geolocation fields found in an ip-api answer."""
    if not isinstance(answer, dict):
        raise _LookupError(f"answer is not a JSON object: {_shown(answer)}")
    if answer.get("status") != "success":
        status, message = answer.get("status"), answer.get("message", "")
        raise _LookupError(f"service answered status {_shown(status)}, {_shown(message)}")

    parts = (_text(answer.get(key)) for key in ("city", "regionName", "country"))
    return {
        "coordinates": _coordinates(answer.get("lat"), answer.get("lon")),
        "timezone": _text(answer.get("timezone")),
        "country_code": _text(answer.get("countryCode")),
        "location": ", ".join(part for part in parts if part),
        "isp": _text(answer.get("isp")),
    }


def _coordinates(lat: Any, lon: Any) -> str:
    """Return "lat,lon" when both are numbers, else ""."""
    numbers = [value for value in (lat, lon) if type(value) in (int, float)]
    return f"{lat},{lon}" if len(numbers) == 2 else ""


def _text(value: Any) -> str:
    """Return a text field of an answer, or "" when it is absent or not text."""
    return value.strip() if isinstance(value, str) else ""


def _host(url: str) -> str:
    """Return host[:port] of `url`, leaving out any credentials, path and query."""
    return urlsplit(url).netloc.rpartition("@")[2] or "(no host)"


def _shown(value: Any) -> str:
    """Return a short printable form of an unexpected value for a log line."""
    text = ascii(value.decode("utf-8", "replace") if isinstance(value, bytes) else value)
    return text if len(text) <= SHOWN_VALUE_CHARS else text[: SHOWN_VALUE_CHARS - 3] + "..."
