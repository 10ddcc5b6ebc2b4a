"""The `syndicator` command: a thin click shell over build(), normalize() and the server."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

# `pipeline` loads its stages on first use: `serve` listens first
from syndicator import __version__, config, folders, parallel, pipeline, progress, redirects, sources, websub
from syndicator.config import Settings
from syndicator.dates import rfc3339
from syndicator.errors import ConfigError, SyndicatorError
from syndicator.model import Post
from syndicator.pipeline import guard
from syndicator.publishers.directory import DirectoryPublisher
from syndicator.store import local
from syndicator.websub.ping import Pinger

#: Seconds `build` waits for its WebSub pings (first tries and the quick retries) before it exits.
PING_WAIT = 30.0

EXIT_BAD_INPUT = 1
EXIT_BAD_CONFIG = 2
#: Paths of folders and files the settings name: checked by the commands themselves, which say
#: what is wrong in one line (click's own check would add its usage text).
PATH = click.Path(path_type=Path, readable=False)
#: ctx.obj key: the command built so many objects that the process should leave without
#: tearing them down (see `_exit_now`).
_LARGE = "large"


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    try:
        settings = config.load_settings(ctx.obj.get("config"), overrides=overrides)
        ctx.obj["log_level"] = settings.log_level  # (debug: errors show their traceback)
        return settings
    except ConfigError as e:
        click.echo(f"syndicator: config error: {e}", err=True)
        ctx.exit(EXIT_BAD_CONFIG)
        raise  # unreachable; keeps type checkers content


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=PATH, default=None,
              help="Settings file (default: config/syndicator.yaml if present; or $SYNDICATOR_CONFIG).")
@click.option("-v", "--verbose", is_flag=True, help="Show the traceback of an error.")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress and no summary (build); only warnings and errors in the log (serve).")
@click.version_option(__version__, prog_name="syndicator")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool, quiet: bool) -> None:
    """Turn a folder of front-matter posts into per-topic RSS, Atom and JSON feeds."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_path
    ctx.obj["verbose"] = verbose
    ctx.obj["quiet"] = quiet


def _config_option(f: Any) -> Any:
    # accepted after the subcommand too: `syndicator build --config F`
    def remember(ctx: click.Context, _param: Any, value: Path | None) -> None:
        if value is not None:
            ctx.ensure_object(dict)["config"] = value

    return click.option("--config", type=PATH, expose_value=False,
                        callback=remember, is_eager=True, help="Settings file.")(f)


def _quiet_option(f: Any) -> Any:
    # accepted after the subcommand too: `syndicator build -q`
    def remember(ctx: click.Context, _param: Any, value: bool) -> None:
        if value:
            ctx.ensure_object(dict)["quiet"] = True

    return click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=remember, is_eager=True,
                        help="No progress and no summary (build); warnings and errors only in the log (serve).")(f)


def _report_problems(problems: list[Any]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


def _stop_if_held(ctx: click.Context, held: guard.Hold | None, confirm: str | None = None) -> None:
    """A held pass is one line naming the folder, and exit 2. `confirm`: the command that
    confirms it (None: the command publishes nothing anyway)."""
    if held is not None:
        advice = f"; {guard.advice(held, confirm)}" if confirm else ""
        click.echo(f"syndicator: {held.reason}{advice}", err=True)
        ctx.exit(EXIT_BAD_CONFIG)


@cli.command()
@_config_option
@_quiet_option
@click.option("--seeds", type=PATH, help="Folder of posts (overrides seeds_dir).")
@click.option("--out", type=PATH, help="Output folder (overrides feeds_dir).")
@click.option("--base-url", help="Public URL the feeds are served under (overrides base_url).")
@click.option("--state", type=PATH, help="State folder (overrides state_dir).")
@click.option("--strict", is_flag=True, help="Exit 1 if any post had an error.")
@click.option("--confirm-removals", is_flag=True, default=None,
              help="Publish even if the pass takes many posts off the site (see hold_removals_share).")
@click.pass_context
def build(ctx: click.Context, seeds: Path | None, out: Path | None, base_url: str | None, state: Path | None,
          strict: bool, confirm_removals: bool | None) -> None:
    """One full pass: read every post and write every feed (again only what changed since the
    last build or serve with the same state folder)."""
    settings = _settings(ctx, seeds_dir=seeds, feeds_dir=out, base_url=base_url, confirm_removals=confirm_removals,
                         state_dir=state)
    folders.writable(settings.feeds_dir, "output")
    folders.writable(settings.state_dir, "state")
    with local.opened(settings) as store:
        publisher = DirectoryPublisher(settings.feeds_dir, durable=settings.durable_writes)
        publisher.remove_temp_files()  # both folders are ours: no writer of ours is running
        with progress.reported(_progress_line, sys.stderr.isatty(), when=not ctx.obj.get("quiet")):
            result = pipeline.Builder(settings, state=store, publisher=publisher).build(once=True)
    _stop_if_held(ctx, result.held, "syndicator build --confirm-removals")
    ctx.obj[_LARGE] = result.posts_read >= parallel.MIN_FILES  # the size whose first pass pauses GC
    _report_problems(result.problems)
    errors = len(result.errors)
    if not ctx.obj.get("quiet"):
        _summary(result, settings)
    redirects.check_targets(settings.redirects, DirectoryPublisher(settings.feeds_dir).exists)
    _ping(settings, result.written)
    if strict and errors:
        ctx.exit(EXIT_BAD_INPUT)


def _progress_line(text: str) -> None:
    """Progress of a long build on stderr: rewritten in place on a terminal, else a line."""
    sys.stderr.write(text if text.startswith("\r") else text + "\n")
    sys.stderr.flush()


def _summary(result: Any, settings: Settings) -> None:
    errors = len(result.errors)
    click.echo(
        f"{result.posts_read} posts read, {result.posts_published} published, "
        f"{result.drafts_skipped} drafts skipped, {errors} errors, "
        f"{len(result.problems) - errors} warnings; {result.feed_count * 3} feeds "
        f"({len(result.written)} files written, {result.unchanged} unchanged) "
        f"in {result.duration_ms:.0f} ms → {settings.feeds_dir}"
    )


def _ping(settings: Settings, written: list[str]) -> None:
    """Tell the external hubs which feeds this build changed, waiting PING_WAIT at most."""
    changed = websub.topics(written)
    pinger = Pinger(websub.external(settings))
    if not changed or not pinger.hubs:
        return
    pinger.start().publish(settings.base_url + rel for rel in changed)
    if not pinger.drain(PING_WAIT):
        click.echo(f"syndicator: websub: {pinger.pending()} pings still failing after {PING_WAIT:.0f} s; "
                   f"not sent", err=True)
    pinger.close()


def post_json(post: Post) -> dict[str, Any]:
    """The common model as plain JSON, for `normalize` and golden test files."""
    return {
        "id": post.id,
        "title": post.title,
        "link": post.link,
        "summary": post.summary,
        "content_html": post.content_html,
        "published": rfc3339(post.published),
        "updated": rfc3339(post.updated),
        "topics": [{"name": t.name, "slug": t.slug} for t in post.topics],
        "source": {"name": post.source.name, "domain": post.source.domain, "url": post.source.url}
        if post.source else None,
        "authors": list(post.authors),
        "language": post.language,
        "images": [{"url": i.url, "width": i.width, "height": i.height, "title": i.title} for i in post.images],
        "related": [
            {"title": r.title, "url": r.url, "published": rfc3339(r.published) if r.published else None,
             "source": {"name": r.source.name, "domain": r.source.domain} if r.source else None}
            for r in post.related
        ],
        "related_more": post.related_more,
        "draft": post.draft,
        "quality": post.quality,
        "heat": post.heat,
        "path": post.path,
        "extra": sorted(post.extra),
    }


@cli.command()
@_config_option
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, default=True, help="One JSON object per line (the default).")
@click.pass_context
def normalize(ctx: click.Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Show the common model of each FILE, as the service sees it."""
    settings = _settings(ctx)
    settings = pipeline.pin_ids(settings, DirectoryPublisher(settings.feeds_dir).site_record())
    failed = False
    for path in files:
        root, rel = _root_and_rel(settings, path)
        sites = sources.SiteConfigs(root)
        read = pipeline.read_one(root, rel, (0, 0), settings, sites)
        _report_problems(list(read.problems))
        if read.post is None:
            failed = failed or not read.not_a_post
            if read.not_a_post:
                click.echo(f"{rel}: not a post (a site page)", err=True)
            continue
        click.echo(json.dumps(post_json(read.post), ensure_ascii=False, sort_keys=False))
    if failed:
        ctx.exit(EXIT_BAD_INPUT)


def _root_and_rel(settings: Settings, path: Path) -> tuple[Path, str]:
    """Paths inside seeds/ keep their relative path (ids and _config.yml depend on it)."""
    seeds = settings.seeds_dir.resolve()
    full = path.resolve()
    if full.is_relative_to(seeds):
        return settings.seeds_dir, full.relative_to(seeds).as_posix()
    return path.parent, path.name


@cli.command()
@_config_option
@click.option("--seeds", type=PATH, help="Folder of posts (overrides seeds_dir).")
@click.pass_context
def check(ctx: click.Context, seeds: Path | None) -> None:
    """Validate every post without writing anything; exit 1 if any has an error."""
    settings = _settings(ctx, seeds_dir=seeds)
    builder = pipeline.Builder(settings)
    result = builder.check()
    _stop_if_held(ctx, result.held)
    _report_problems(result.problems)
    errors = len(result.errors)
    click.echo(f"{len(builder.reads)} files checked: {result.posts_read} posts, {errors} errors, "
               f"{len(result.problems) - errors} warnings")
    if errors:
        ctx.exit(EXIT_BAD_INPUT)


@cli.command()
@_config_option
@click.option("--state", type=PATH, help="State folder (overrides state_dir).")
@click.pass_context
def confirm(ctx: click.Context, state: Path | None) -> None:
    """Publish the pass the service holds because it takes many posts off the site."""
    settings = _settings(ctx, state_dir=state)
    held = guard.confirm(settings.state_dir)
    if held is None:
        click.echo(f"syndicator: nothing is held (no hold recorded in {settings.state_dir})", err=True)
        ctx.exit(EXIT_BAD_INPUT)
    elif not held.confirmable:
        click.echo(f"syndicator: {held.reason}: that cannot be confirmed, only mended", err=True)
        ctx.exit(EXIT_BAD_INPUT)
    else:
        click.echo(f"confirmed: {held.reason}; the service publishes it on its next pass")


@cli.command("config")
@_config_option
@click.pass_context
def show_config(ctx: click.Context) -> None:
    """Print the effective settings with their help."""
    click.echo(config.dump(_settings(ctx)), nl=False)


@cli.command()
@_config_option
@_quiet_option
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8080).")
@click.option("--base-url", help="Public URL the feeds are served under (default: http://<host>:<port>/).")
@click.option("--seeds", type=PATH, help="Folder of posts (overrides seeds_dir).")
@click.option("--out", type=PATH, help="Output folder (overrides feeds_dir).")
@click.option("--state", type=PATH, help="State folder (overrides state_dir).")
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Log line format.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Lowest level logged.")
@click.option("--confirm-removals", is_flag=True, default=None,
              help="Publish the first pass even if it takes many posts off the site.")
@click.option("--role", type=click.Choice(["all", "builder", "web"]),
              help="all: build and serve; builder, web: one part of a site on several machines (state_url).")
@click.pass_context
def serve(ctx: click.Context, /, **options: Any) -> None:
    """Build, then serve feeds/ over HTTP and keep it current while seeds/ changes."""
    renames = {"seeds": "seeds_dir", "out": "feeds_dir", "state": "state_dir"}
    overrides = {renames.get(k, k): v for k, v in options.items()}
    if ctx.obj.get("quiet") and overrides.get("log_level") is None:
        overrides["log_level"] = "warning"
    settings = _settings(ctx, **overrides)
    if settings.role != "all" and not settings.state_url:
        click.echo(f"syndicator: role {settings.role} needs state_url (the PostgreSQL database the builders and "
                   "web nodes share)", err=True)
        ctx.exit(EXIT_BAD_CONFIG)
    if settings.role == "all":  # (with state_url too: the published site is written to feeds/ for nginx)
        folders.writable(settings.feeds_dir, "output")
    if settings.role != "web":
        folders.writable(settings.state_dir, "state")
    from syndicator import daemon

    def load() -> Settings:  # SIGHUP: the file and the environment again, the same flags over them
        return config.load_settings(ctx.obj.get("config"), overrides=overrides)

    ctx.exit(daemon.run(settings, load))  # (a SyndicatorError is main's: one line, exit 2)


@cli.group()
def db() -> None:
    """The PostgreSQL database of a site run on several machines (state_url)."""


@db.command()
@_config_option
@click.option("--state-url", help="PostgreSQL URL (overrides state_url).")
@click.option("--to", "target", type=int, help="Stop at this schema version (default: the latest).")
@click.pass_context
def upgrade(ctx: click.Context, state_url: str | None, target: int | None) -> None:
    """Create or migrate the schema to this version's; running it again changes nothing."""
    settings = _settings(ctx, state_url=state_url)
    if not settings.state_url:
        click.echo("syndicator: state_url is not set (the SQLite state needs no upgrade)", err=True)
        ctx.exit(EXIT_BAD_CONFIG)
    from syndicator.store import pg

    database = pg.Database(settings.state_url)
    try:
        before = pg.version(database)
        if target is not None and not before <= target <= pg.latest():
            click.echo(f"syndicator: --to must be between {before} and {pg.latest()}", err=True)
            ctx.exit(EXIT_BAD_CONFIG)
        applied = pg.upgrade(database, target)
        now = pg.version(database)
    finally:
        database.close()
    done = f"applied {', '.join(map(str, applied))}" if applied else "nothing to apply"
    click.echo(f"database schema at version {now} (was {before}; {done})")


def main() -> None:
    obj: dict[str, Any] = {}
    try:
        cli(obj=obj)
    except SyndicatorError as e:  # expected failures: one line (a traceback only when asked)
        _fail(obj, str(e))
    except OSError as e:  # the environment: a folder, a disk, a permission
        where = f"{e.filename} -> {e.filename2}" if e.filename2 else e.filename
        _fail(obj, f"{where}: {e.strerror}" if where and e.strerror else str(e))
    except SystemExit as e:  # how click ends every command
        if obj.get(_LARGE) and (e.code is None or isinstance(e.code, int)):
            _exit_now(e.code or 0)
        raise


def _fail(obj: dict[str, Any], message: str) -> None:
    """One line on stderr and exit 2; the traceback too with -v or log_level debug."""
    if obj.get("verbose") or obj.get("log_level") == "debug":
        traceback.print_exc()
    click.echo(f"syndicator: {message}", err=True)
    sys.exit(EXIT_BAD_CONFIG)


def _exit_now(code: int) -> None:
    """Leave once the output is flushed, without the interpreter's teardown: after a build of
    thousands of posts it would collect and free a million objects one by one (~0.1 s at
    10,000 posts). Every file is written and closed by then, and no child process is left."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    main()
