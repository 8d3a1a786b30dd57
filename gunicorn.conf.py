"""gunicorn's settings for every way the app is served (scripts/run.sh, the image, the tests'
servers): gunicorn reads ./gunicorn.conf.py from the directory it starts in, the repository
root. Options given on the command line still win.

The access log does not tie client addresses to requests by default: a log line with an
address beside `POST /api/v1/events/` says from where an event was reported, and
contributors can be at risk from the authorities they report on. ACCESS_LOG_IP chooses:

    none       (default) no address, no user agent
    truncated  the network only: IPv4 /24, IPv6 /48 (enough to see abuse from a network)
    full       the whole address (for debugging; do not keep such logs)

Behind API_NUM_PROXIES reverse proxies the address is the client's as the app sees it (the
one the proxies appended to X-Forwarded-For), not the proxy's.
"""

from __future__ import annotations

import ipaddress
import os

from gunicorn.glogging import Logger

ACCESS_LOG_IP_MODES = ("none", "truncated", "full")
access_log_ip = os.environ.get("ACCESS_LOG_IP", "none").strip().lower() or "none"
if access_log_ip not in ACCESS_LOG_IP_MODES:
    raise SystemExit(
        f"ACCESS_LOG_IP={access_log_ip!r} is not understood: use one of "
        f"{', '.join(ACCESS_LOG_IP_MODES)} (default none)."
    )

_NUM_PROXIES = int(os.environ.get("API_NUM_PROXIES", "0") or 0)


def client_address(environ: dict) -> str:
    """The rule of the API throttles and the login lockout (DRF's NUM_PROXIES)."""
    remote = environ.get("REMOTE_ADDR") or "-"
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if _NUM_PROXIES <= 0 or not forwarded:
        return remote
    addresses = [a.strip() for a in forwarded.split(",")]
    return addresses[-min(_NUM_PROXIES, len(addresses))] or remote


def truncate_address(address: str) -> str:
    """192.0.2.77 -> 192.0.2.0/24, 2001:db8:1:2::9 -> 2001:db8:1::/48; anything else '-'."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "-"
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class PrivacyLogger(Logger):
    """gunicorn's logger, with the address atom `h` as ACCESS_LOG_IP says."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        if access_log_ip == "full":
            atoms["h"] = client_address(environ)
        elif access_log_ip == "truncated":
            atoms["h"] = truncate_address(client_address(environ))
        else:
            atoms["h"] = "-"
        # Forwarding headers carry the address whatever `h` says; never log them raw.
        for key in list(atoms):
            if key in ("{x-forwarded-for}i", "{x-real-ip}i", "{forwarded}i"):
                atoms[key] = atoms["h"]
        return atoms


logger_class = PrivacyLogger
if access_log_ip == "none":
    access_log_format = '%(t)s "%(r)s" %(s)s %(b)s %(L)s'
else:
    access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(L)s "%(a)s"'
