"""One settings table: defaults, help and validation for every key.

Layers, later wins: defaults < config/syndicator.yaml < SYNDICATOR_* environment < CLI flags.
Unknown or mistyped keys stop start-up with the closest valid key as a hint.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from syndicator import links
from syndicator.errors import ConfigError
from syndicator.formats import FEED_FORMATS
from syndicator.sources import yaml_safe

DEFAULT_CONFIG_PATH = Path("config/syndicator.yaml")
ENV_PREFIX = "SYNDICATOR_"


def _positive(value: int) -> int:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


def _share(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("must be a share between 0 and 1 (0.5 is half)")
    return value


def _not_negative(value: int) -> int:
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _base_url(value: str) -> str:
    if not value:  # the address serve listens on (see listening_url)
        return value
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an absolute http(s) URL like https://feeds.example.org/")
    try:
        return links.web_url(value).rstrip("/") + "/"
    except links.BadURL as e:
        raise ValueError(f"must be an absolute http(s) URL like https://feeds.example.org/: {e}") from None


def _state_url(value: str) -> str:
    if value and not re.match(r"^postgres(ql)?://", value):
        raise ValueError("must be empty (SQLite in state_dir) or a postgresql:// URL")
    return value


def _tag_date(value: str) -> str:
    date.fromisoformat(value)
    return value


def _tag_authority(value: str) -> str:
    # RFC 4151: a DNS name or an email address; empty: derived once (see normalize.tag_authority)
    if value and not re.fullmatch(r"([^@\s]+@)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", value):
        raise ValueError("must be a domain name (feeds.example.org) or an email address")
    return value.lower()


def _aliases(value: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).strip(): str(v).strip() for k, v in value.items()}


def _hubs(value: list[str]) -> tuple[str, ...]:
    for url in value:
        if url != "self" and not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"must be a list of absolute http(s) hub URLs (or 'self'), not {url!r}")
    try:
        return tuple(dict.fromkeys(url if url == "self" else links.web_url(url) for url in value))
    except links.BadURL as e:
        raise ValueError(f"must be a list of absolute http(s) hub URLs (or 'self'): {e}") from None


def _feed_keys(value: list[str]) -> tuple[str, ...]:
    """Feeds named by key: `all`, or a topic's slug as its feed URL spells it."""
    for key in value:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", key):
            raise ValueError(f"must be a list of feeds: all, or topic slugs as in topics/<slug>.rss (ai, "
                             f"machine-learning), not {key!r}")
    return tuple(dict.fromkeys(value))


def _cache_urls(value: list[str]) -> tuple[str, ...]:
    for url in value:
        if not re.match(r"^http://[^/\s]+/?$", url):
            raise ValueError(f"must be a list of http://host:port/ addresses of caches, not {url!r}")
    return tuple(url.rstrip("/") for url in value)


#: The first bytes of the image types an icon setting accepts.
_IMAGE_MAGIC = {"PNG": b"\x89PNG\r\n\x1a\n", "ICO": b"\x00\x00\x01\x00"}
_MAX_ICON_BYTES = 1024 * 1024


def _image_file(*kinds: str) -> Callable[[str], str]:
    """A file holding an image of one of `kinds` (empty: the built-in icon)."""
    def check(value: str) -> str:
        if not value:
            return value
        try:
            with open(value, "rb") as f:
                head = f.read(_MAX_ICON_BYTES + 1)
        except OSError as e:
            raise ValueError(f"cannot read {value}: {e.strerror}") from None
        if len(head) > _MAX_ICON_BYTES:
            raise ValueError(f"{value} is larger than 1 MB")
        if not any(head.startswith(_IMAGE_MAGIC[kind]) for kind in kinds):
            raise ValueError(f"{value} is not a {' or '.join(kinds)} image")
        return value
    return check


def _networks(value: list[str]) -> tuple[str, ...]:
    for net in value:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ValueError(f"must be a list of networks like 10.0.0.0/8 or ::1/128, not {net!r}") from None
    return tuple(value)


def _access_log(value: str) -> str:
    if value in ("stderr", "off"):
        return value
    if not value or not os.path.isdir(os.path.dirname(os.path.abspath(value))):
        raise ValueError(f"must be stderr, off or a file in an existing folder, not {value!r}")
    return value


def _redirects(value: Mapping[str, Any]) -> dict[str, str]:
    from syndicator import redirects  # (its slugs import pypinyin: only when the setting is used)

    return redirects.configured(value) if value else {}


def _choice(*allowed: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return check


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    type: type
    help: str
    validate: Callable[[Any], Any] | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting("site_title", "Syndicator", str, "Title of the site; every feed is titled '<site_title> · <topic>'."),
    Setting("site_description", "Posts by topic", str, "Description used in feeds and the index page."),
    Setting("base_url", "", str,
            "Public URL the feeds are served under; self links and post pages are built from it. "
            "Empty: http://<host>:<port>/, where 'serve' listens.", _base_url),
    Setting("author", "Syndicator", str, "Feed author, used where a post names none (Atom requires one)."),
    Setting("language", "en", str, "BCP 47 language of posts that declare none and are not detected as CJK."),
    Setting("timezone", "UTC", str, "IANA time zone for post dates written without an offset.", _timezone),
    Setting("seeds_dir", "seeds", Path, "Folder of posts to read (walked recursively)."),
    Setting("feeds_dir", "feeds", Path, "Folder the feeds, pages and .gz copies are written to."),
    Setting("state_dir", "var", Path, "Folder of the state database and the lock file."),
    Setting("state_url", "", str,
            "PostgreSQL URL of the shared state (postgresql://user@host:5432/db) for running on several machines; "
            "empty: the SQLite file in state_dir. Create its schema with 'syndicator db upgrade'.", _state_url),
    Setting("role", "all", str,
            "What 'serve' does: all (build and serve; with state_url also writes feeds_dir for nginx), "
            "builder (build and publish while elected; needs state_url) or web (serve what the builders "
            "published; needs state_url, no posts folder).",
            _choice("all", "builder", "web")),
    Setting("purge_caches", [], list,
            "HTTP caches in front of the web nodes (http://host:port/, Varnish as in contrib/varnish.vcl): each web "
            "node sends them PURGE <path> for every output it has just loaded a new version of.", _cache_urls),
    Setting("items_per_feed", 50, int, "Newest items kept in each feed.", _positive),
    Setting("related_shown", 10, int, "Related items shown under a news item; the rest are counted in an "
            "'and N more' line.", _not_negative),
    Setting("archive_page_size", 50, int,
            "Items per RFC 5005 archive page: older items than a feed shows are kept in pages of this many, "
            "counted from the oldest (at most items_per_feed: a larger value is taken as items_per_feed). 0: no "
            "archive pages (a feed then holds its newest items only, and pages published before are taken down).",
            _not_negative),
    Setting("include_drafts", False, bool, "Put posts marked 'published: false' in the feeds."),
    Setting("topic_aliases", {}, dict, "Topic name -> canonical topic name, to merge spellings.", _aliases),
    Setting("redirects", {}, dict,
            "Old URL path -> path of ours ({blog/feed.xml: topics/blog.atom}) answered with a 301, beside the "
            "feed URLs of WordPress, Jekyll, Hugo and Pelican that are redirected anyway. Checked at start: a "
            "loop, or a target that is not published after the first pass, is an error.", _redirects),
    Setting("max_post_bytes", 1024 * 1024, int, "Posts larger than this many bytes are rejected.", _positive),
    Setting("tag_date", "2024-01-01", str,
            "Fixed date in the tag: URIs minted for posts without a URL or id; never change it.", _tag_date),
    Setting("tag_authority", "", str,
            "Domain (or email address) in the tag: URIs minted for posts without a URL or id; never change it. "
            "Empty: base_url's host, taken once and kept in feeds/.site.json.", _tag_authority),
    Setting("hold_removals_share", 0.5, float,
            "A pass that would take more than this share of the published posts off the site (and more than "
            "hold_removals_min) is held, not published, until confirmed: 'syndicator confirm'.", _share),
    Setting("hold_removals_min", 5, int, "A pass that takes at most this many posts off the site is never held.",
            _not_negative),
    Setting("confirm_removals", False, bool,
            "Publish the first pass of this run even if it is held for removals (build --confirm-removals)."),
    Setting("opml_format", "atom", str,
            "Feed format listed in feeds.opml and subscribed to by the feed pages' one-click links.",
            _choice(*FEED_FORMATS)),
    Setting("websub_hubs", [], list,
            "WebSub hub URLs every feed names (rel=hub in the feeds and in HTTP Link headers) and that are pinged "
            "when a feed changes; 'self': the hub 'serve' runs itself at <base_url>hub; empty: none.",
            _hubs),
    Setting("favicon", "", str,
            "An .ico or .png file served as /favicon.ico (browsers and some readers ask every site for it); "
            "empty: the built-in feed icon.", _image_file("ICO", "PNG")),
    Setting("feed_icon", "", str,
            "A square .png file published as icon.png and named by every feed (Atom icon, RSS image, JSON Feed "
            "icon and favicon): readers show it beside the feed's name; empty: the built-in feed icon.",
            _image_file("PNG")),


    Setting("websub_lease_seconds", 864000, int,
            "Our own hub: the lease of a subscription that asks for none, and the longest one granted.", _positive),
    Setting("websub_max_subscribers", 1000, int, "Our own hub: subscriptions a topic (feed) may have at most.",
            _positive),
    Setting("websub_max_per_host", 100, int, "Our own hub: subscriptions whose callbacks are on one host at most.",
            _positive),
    Setting("websub_allow_networks", [], list,
            "Our own hub: networks (CIDR) a callback may be in besides public addresses; loopback, private, "
            "link-local and multicast callbacks are refused unless listed (127.0.0.0/8 for a local subscriber).",
            _networks),
    Setting("durable_writes", True, bool,
            "Sync every file written and its folder before a pass reports it done, so a power cut never "
            "leaves an empty or missing feed (costs a little on a cold build; off for a RAM disk)."),
    Setting("cache_max_age", 300, int, "Seconds in Cache-Control: max-age for served files.", _positive),
    Setting("custom_feeds", True, bool,
            "Answer topic combinations (topics/ai+azure.rss) and filter parameters (?filter=...) on the feed "
            "URLs of 'serve'."),
    Setting("group_stories", [], list,
            "Feeds written with one item per story (posts of several sources on one news as one item, the others "
            "under 'Also covered by'): all, or topic slugs ([all, ai]); empty: none. Any feed can be asked for "
            "grouped with ?group=story.", _feed_keys),
    Setting("custom_cache_entries", 1024, int, "Custom feeds kept rendered in memory, at most.", _positive),
    Setting("custom_cache_mb", 64, int, "Megabytes of rendered custom feeds kept in memory, at most.", _positive),
    Setting("file_cache_mb", 16, int,
            "Megabytes of published files 'serve' (or a web node) keeps in memory (each with its gzip twin), and as "
            "much again of whole answers it replays; the least recently served go first, and the rest are read from "
            "disk. 0: none kept.", _not_negative),
    Setting("filter_max_length", 256, int, "Longest regular expression a filter parameter may carry.", _positive),
    Setting("scan_interval", 2.0, float, "Seconds between scans of the seeds folder while serving.", _positive),
    Setting("host", "127.0.0.1", str, "Address 'serve' listens on."),
    Setting("port", 8080, int, "Port 'serve' listens on.", _positive),
    Setting("threads", 4, int, "Worker threads of the HTTP server.", _positive),
    Setting("status_networks", ["127.0.0.0/8", "::1"], list,
            "Clients (addresses or networks) shown /healthz's details (errors, paths, counts); others get the "
            "status alone.", _networks),
    Setting("trusted_proxies", ["127.0.0.0/8", "::1"], list,
            "Proxies whose X-Forwarded-For names the client (nginx in front); a request from any other address "
            "is its own client.", _networks),
    Setting("access_log", "stderr", str,
            "Where 'serve' writes one line per request (combined log format): stderr, a file path "
            "(reopened on SIGHUP), or off. Lines are written in blocks of 64 KB, at most a second late.",
            _access_log),
    Setting("metrics_networks", ["127.0.0.0/8", "::1"], list,
            "Clients (addresses or networks) /metrics answers with Prometheus metrics; others get 404. "
            "Empty: /metrics is off.", _networks),
    Setting("log_format", "text", str, "Log line format on stderr.", _choice("text", "json")),
    Setting("log_level", "info", str, "Lowest level logged.", _choice("debug", "info", "warning", "error")),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class Settings:
    site_title: str
    site_description: str
    base_url: str
    author: str
    language: str
    timezone: str
    seeds_dir: Path
    feeds_dir: Path
    state_dir: Path
    state_url: str
    role: str
    purge_caches: tuple[str, ...]
    items_per_feed: int
    related_shown: int
    archive_page_size: int
    include_drafts: bool
    topic_aliases: dict[str, str]
    redirects: dict[str, str]
    max_post_bytes: int
    tag_date: str
    tag_authority: str
    hold_removals_share: float
    hold_removals_min: int
    confirm_removals: bool
    opml_format: str
    websub_hubs: tuple[str, ...]
    favicon: str
    feed_icon: str


    websub_lease_seconds: int
    websub_max_subscribers: int
    websub_max_per_host: int
    websub_allow_networks: tuple[str, ...]
    durable_writes: bool
    cache_max_age: int
    custom_feeds: bool
    group_stories: tuple[str, ...]
    custom_cache_entries: int
    custom_cache_mb: int
    file_cache_mb: int
    filter_max_length: int
    scan_interval: float
    host: str
    port: int
    threads: int
    status_networks: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    access_log: str
    metrics_networks: tuple[str, ...]
    log_format: str
    log_level: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def with_overrides(self, **values: Any) -> Settings:
        return replace(self, **_validated(values, "override"))


def _hint(name: str) -> str:
    close = difflib.get_close_matches(name, SETTINGS_BY_NAME, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        if value.lower() not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
            raise ValueError("must be true or false")
        return value.lower() in {"1", "true", "yes", "on"}
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _to_number(kind: type[int] | type[float]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"must be a number, not {type(value).__name__}")
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"must be a number, not {value!r}") from None
    return convert


def _to_mapping(value: Any) -> Any:
    if isinstance(value, str):  # from an environment variable: YAML flow syntax
        value = yaml_safe.load_yaml(value) or {}
    if not isinstance(value, Mapping):
        raise ValueError("must be a mapping of name: value")
    return value


def _to_list(value: Any) -> list[str]:
    if isinstance(value, str):  # from an environment variable: comma-separated
        return [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of text")
    return list(value)


def _to_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"must be text, not {type(value).__name__}")
    return str(value)


#: Setting type -> how a value from the file, the environment or a flag becomes one.
_CONVERTERS: dict[type, Callable[[Any], Any]] = {
    bool: _to_bool, int: _to_number(int), float: _to_number(float), dict: _to_mapping, list: _to_list,
    Path: lambda value: Path(str(value)), str: _to_text,
}


def _coerce(setting: Setting, value: Any, origin: str) -> Any:
    try:
        value = _CONVERTERS[setting.type](value)
        return setting.validate(value) if setting.validate else value
    except ValueError as e:
        raise ConfigError(f"{origin}: setting {setting.name!r} {e}") from None


def _validated(values: Mapping[str, Any], origin: str) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if name not in SETTINGS_BY_NAME:
            raise ConfigError(f"{origin}: unknown setting {name!r}{_hint(name)}")
        out[name] = _coerce(SETTINGS_BY_NAME[name], value, origin)
    return out


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml_safe.load_yaml(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from None
    except yaml_safe.YAMLSyntaxError as e:
        where = f"{path}:{e.line}" if e.line else str(path)
        raise ConfigError(f"{where}: {e.message}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: config must be a mapping of setting: value")
    return _validated(data, str(path))


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    picked = {k[len(ENV_PREFIX):].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    picked.pop("config", None)  # names the file, not a setting
    return _validated(picked, "environment")


def load_settings(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults, then the YAML file, then SYNDICATOR_* variables, then explicit overrides."""
    env = os.environ if env is None else env
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    values = {s.name: _coerce(s, s.default, "default") for s in SETTINGS}
    if path is not None:
        if not path.exists():
            raise ConfigError(f"{path}: config file not found")
        values.update(_from_file(path))
    elif DEFAULT_CONFIG_PATH.exists():
        values.update(_from_file(DEFAULT_CONFIG_PATH))
    values.update(_from_env(env))
    values.update(_validated({k: v for k, v in (overrides or {}).items() if v is not None}, "command line"))
    values["base_url"] = values["base_url"] or listening_url(values["host"], values["port"])
    return Settings(**values)


def listening_url(host: str, port: int) -> str:
    """base_url when none is set: where `serve` listens (a wildcard address: this machine)."""
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def dump(settings: Settings) -> str:
    """The effective settings as YAML-ish lines with their help, for `syndicator config`."""
    lines = []
    for f in fields(settings):
        setting = SETTINGS_BY_NAME[f.name]
        value = getattr(settings, f.name)
        lines.append(f"# {setting.help}")
        lines.append(f"{f.name}: {yaml_safe.dump_yaml_scalar(value)}")
    return "\n".join(lines) + "\n"
