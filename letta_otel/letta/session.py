"""The aiohttp session every Letta request goes through: TLS, proxy, redirects, pool.

* TLS is verified against ``SSL_CERT_FILE`` and/or ``SSL_CERT_DIR`` when set (as
  OpenSSL, curl, requests and httpx read them), else certifi's CA bundle.
* The proxy comes from the environment as curl, requests and httpx read it:
  ``HTTPS_PROXY``/``HTTP_PROXY`` for the base URL's scheme, else ``ALL_PROXY``; a
  host listed in ``NO_PROXY`` goes direct. It is read once, with the standard library
  (``urllib.request.getproxies``/``proxy_bypass``, which aiohttp itself uses), and
  handed to aiohttp as the session's proxy. Not through aiohttp's ``trust_env=True``:
  that reads the environment again on a worker thread for every request, skips
  ``ALL_PROXY``, and also takes credentials from ``~/.netrc``, which aiohttp refuses
  to combine with the ``Authorization`` header that carries the Letta API key.
* Redirects are followed only within the base URL's origin (scheme, host, port), at
  most :data:`MAX_REDIRECTS` hops: the API key is never sent anywhere else.
* One pool of at most ``max_connections`` keep-alive connections.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
import certifi
from yarl import URL

MAX_REDIRECTS = 5


class TransportConfigError(Exception):
    """The environment asks for something the client cannot do (the message names it)."""


class RedirectRefused(Exception):
    """Letta (or something in front of it) redirected to another origin."""


def ssl_context() -> ssl.SSLContext:
    """Verifying TLS context: ``SSL_CERT_FILE``/``SSL_CERT_DIR`` if set, else certifi."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        return ssl.create_default_context(cafile=certifi.where())
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        names = " and ".join(
            f"{name}={value}"
            for name, value in (("SSL_CERT_FILE", cafile), ("SSL_CERT_DIR", capath))
            if value
        )
        reason = getattr(exc, "strerror", None) or str(exc)
        raise TransportConfigError(f"cannot load CA certificates from {names} ({reason})") from None


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, or None to go direct."""
    parts = urlsplit(url)
    proxies = getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass(parts.hostname or ""):
        return None
    if "://" not in proxy:  # "proxy.internal:3128", as curl and requests accept it
        proxy = f"http://{proxy}"
    scheme = urlsplit(proxy).scheme.lower()
    if scheme not in ("http", "https"):
        raise TransportConfigError(
            f"the {scheme} proxy that the environment names for {parts.scheme}:// "
            "(HTTPS_PROXY, HTTP_PROXY or ALL_PROXY) is not supported: only http:// and "
            "https:// proxies are; set NO_PROXY to the Letta host to go direct"
        )
    return proxy


def describe_proxy(proxy: str) -> str:
    """The proxy's address without its credentials, for logs."""
    parts = urlsplit(proxy)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def same_origin_only(base_url: str) -> aiohttp.ClientMiddlewareType:
    """A client middleware that refuses, before connecting, any request (a redirect's
    next hop) outside ``base_url``'s origin."""
    base = URL(base_url)
    origin = (base.scheme, base.host, base.port)

    async def middleware(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        url = request.url
        if (url.scheme, url.host, url.port) != origin:
            raise RedirectRefused(
                f"redirected to another origin, {url.scheme}://{url.host}:{url.port}, "
                "refused (the API key is only sent to LETTA_BASE_URL's origin; if Letta "
                "moved, set LETTA_BASE_URL to its new address)"
            )
        return await handler(request)

    return middleware


def open_session(
    base_url: str,
    *,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
    max_connections: int,
) -> tuple[aiohttp.ClientSession, str | None]:
    """The session for ``base_url`` and the proxy it uses (None: direct). Must be
    called with a running event loop, which the session is bound to."""
    proxy = env_proxy(base_url)
    https = base_url.startswith("https:") or (proxy or "").startswith("https:")
    connector = aiohttp.TCPConnector(
        limit=max_connections, limit_per_host=0, ssl=ssl_context() if https else True
    )
    session = aiohttp.ClientSession(
        connector=connector,
        headers=dict(headers),
        timeout=timeout,
        proxy=proxy,
        # Letta sets no cookies worth keeping; a proxy's would only cost CPU per request.
        cookie_jar=aiohttp.DummyCookieJar(),
        middlewares=(same_origin_only(base_url),),
        raise_for_status=False,
    )
    return session, proxy
