"""Build kollega's Teams app package: ``python deploy/teams/package.py --out kollega.zip``.

The zip holds ``manifest.json`` (Teams manifest schema v1.30), the two icons, and one
localisation file per additional language. Everything that differs between deployments comes
from the settings (environment variables or ``.env``, read through ``bot.settings.Settings``):

- ``MicrosoftAppId`` (required): the bot's id, ``bots[0].botId``; no build without it.
- ``KOLLEGA_TEAMS_APP_ID`` (default: a UUID5 of the bot id): the Teams app's own id. Derived,
  so every rebuild keeps it and Teams sees an update, not a second app.
- ``KOLLEGA_TEAMS_APP_VERSION`` (default: ``version`` in pyproject.toml): Teams accepts an
  updated package only with a higher version.
- ``KOLLEGA_TEAMS_DEVELOPER_NAME`` (default ``kollega``, at most 32 characters): the
  publisher shown in the app details.
- ``KOLLEGA_TEAMS_WEBSITE_URL``, ``KOLLEGA_TEAMS_PRIVACY_URL``, ``KOLLEGA_TEAMS_TERMS_URL``
  (default: placeholders ``https://kollega.example.org``, ``…/privacy``, ``…/terms``): the
  support page, privacy notice and terms of use; https only.
- ``KOLLEGA_PUBLIC_URL`` (default empty): the bot's public base URL; its host goes into
  ``validDomains``.
- ``KOLLEGA_DEFAULT_LANGUAGE`` (default ``nb``): language of the manifest's own strings
  (``nb`` -> ``nb-NO`` …); the other five languages become localisation files.

Teams requires the three developer URLs; the placeholders (RFC 2606 example domain) keep a
test build possible, and each one used is named in a warning, since employees see them.

Nothing is zipped before it is checked: the manifest against the schema copied into
``schema/`` (with ``Draft7Validator``: the Draft 4 validator ignores the schema's ``const`` on
``manifestVersion``, checked here separately too), the localisation files against the key
rules of the Teams localisation schema, and the icons against Teams' size and outline rules.
Any problem ends the build with exit code 1 and a message naming it. The zip is
reproducible: the same settings give the same bytes.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import re
import struct
import sys
import tomllib
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script, so ``bot`` is not importable by itself
    sys.path.insert(0, str(REPO_ROOT))

from bot.settings import Settings  # noqa: E402

HERE = Path(__file__).resolve().parent
TEMPLATE_FILE = HERE / "manifest.template.json"
LOCALES_DIR = HERE / "locales"
SCHEMA_FILE = HERE / "schema" / "teams-manifest-v1.30.schema.json"
MANIFEST_VERSION = "1.30"
MANIFEST_SCHEMA_URL = (
    f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/"
    "MicrosoftTeams.schema.json"
)
LOCALISATION_SCHEMA_URL = (
    f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/"
    "MicrosoftTeams.Localization.schema.json"
)
# kollega's language codes (bot.settings.SUPPORTED_LANGUAGES) as the tags Teams clients use.
LANGUAGE_TAGS = {
    "nb": "nb-NO",
    "nn": "nn-NO",
    "sv": "sv-SE",
    "da": "da-DK",
    "fi": "fi-FI",
    "en": "en-US",
}
PLACEHOLDER_SITE = "https://kollega.example.org"
# The app id is a UUID5 of the bot id in this namespace: stable across rebuilds and machines,
# and different from the bot id, so the Teams app and the Azure bot are never confused.
APP_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://kollega/teams-app")
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # fixed, so the same settings give the same zip bytes
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")

# Icon rules from the Teams app package requirements.
ICONS = {"color": ("color.png", 192), "outline": ("outline.png", 32)}

# Keys a localisation file may carry (the subset of MicrosoftTeams.Localization.schema.json
# v1.30 kollega uses), each with the schema's maximum length.
LOCALISATION_KEYS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(r"^name\.short$"), 30),
    (re.compile(r"^name\.full$"), 100),
    (re.compile(r"^description\.short$"), 80),
    (re.compile(r"^description\.full$"), 4000),
    (re.compile(r"^bots\[0\]\.commandLists\[[0-2]\]\.commands\[([0-9]|1[0-1])\]\.title$"), 128),
    (
        re.compile(r"^bots\[0\]\.commandLists\[[0-2]\]\.commands\[([0-9]|1[0-1])\]\.description$"),
        4000,
    ),
]
LOCALISATION_REQUIRED = ("name.short", "description.short", "description.full")


class PackageError(Exception):
    """A problem that stops the build; its message is shown to whoever runs the command."""


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name)


class PackageSettings(Settings):
    """kollega's settings plus the few only the Teams package needs.

    Same sources and rules as ``Settings`` (environment, ``.env``, case-insensitive names),
    so ``MicrosoftAppId`` and ``KOLLEGA_DEFAULT_LANGUAGE`` mean exactly what they mean to the
    running bot. Empty strings mean "use the default" (documented in the module docstring).
    """

    teams_app_id: str = Field("", validation_alias=_alias("KOLLEGA_TEAMS_APP_ID"))
    teams_app_version: str = Field("", validation_alias=_alias("KOLLEGA_TEAMS_APP_VERSION"))
    teams_developer_name: str = Field("", validation_alias=_alias("KOLLEGA_TEAMS_DEVELOPER_NAME"))
    teams_website_url: str = Field("", validation_alias=_alias("KOLLEGA_TEAMS_WEBSITE_URL"))
    teams_privacy_url: str = Field("", validation_alias=_alias("KOLLEGA_TEAMS_PRIVACY_URL"))
    teams_terms_url: str = Field("", validation_alias=_alias("KOLLEGA_TEAMS_TERMS_URL"))
    public_url: str = Field("", validation_alias=_alias("KOLLEGA_PUBLIC_URL"))


@dataclass(frozen=True, slots=True)
class Package:
    """What goes into the zip: the manifest and every other file by its name in the zip."""

    manifest: dict[str, Any]
    files: dict[str, bytes]
    warnings: tuple[str, ...] = ()


# --- settings -> manifest -------------------------------------------------------------------


def stable_app_id(bot_id: str) -> str:
    """The Teams app id for a bot id: the same on every rebuild, so Teams sees one app."""
    return str(uuid.uuid5(APP_ID_NAMESPACE, bot_id.strip().lower()))


def project_version() -> str:
    """The version in pyproject.toml, the app version unless ``KOLLEGA_TEAMS_APP_VERSION``."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def _https_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise PackageError(f"{name} must be an https:// URL, got {value!r}")
    return value


def _developer(settings: PackageSettings, warnings: list[str]) -> dict[str, str]:
    """Developer info for the app details page; placeholders are allowed but announced."""
    urls = {}
    for key, variable, value, placeholder in (
        ("websiteUrl", "KOLLEGA_TEAMS_WEBSITE_URL", settings.teams_website_url, ""),
        ("privacyUrl", "KOLLEGA_TEAMS_PRIVACY_URL", settings.teams_privacy_url, "/privacy"),
        ("termsOfUseUrl", "KOLLEGA_TEAMS_TERMS_URL", settings.teams_terms_url, "/terms"),
    ):
        if value.strip():
            urls[key] = _https_url(variable, value.strip())
        else:
            urls[key] = PLACEHOLDER_SITE + placeholder
            warnings.append(f"{variable} is not set: using the placeholder {urls[key]}")
    name = settings.teams_developer_name.strip() or "kollega"
    if len(name) > 32:
        raise PackageError(f"KOLLEGA_TEAMS_DEVELOPER_NAME is {len(name)} characters; at most 32")
    return {"name": name, **urls}


def _valid_domains(settings: PackageSettings) -> list[str]:
    """The bot's public host (no scheme or port, as Teams wants), when it is configured."""
    if not settings.public_url.strip():
        return []
    url = _https_url("KOLLEGA_PUBLIC_URL", settings.public_url.strip())
    return [str(urlsplit(url).hostname)]


def localisable_paths(template: Any, prefix: str = "") -> Iterator[str]:
    """Every ``null`` in the template, as a Teams localisation key (``bots[0].….title``).

    A ``null`` marks a string that comes from the localisation files, so the template holds
    the structure and the files hold every word, in the format Teams itself reads.
    """
    if template is None:
        yield prefix
    elif isinstance(template, dict):
        for key, value in template.items():
            yield from localisable_paths(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(template, list):
        for index, value in enumerate(template):
            yield from localisable_paths(value, f"{prefix}[{index}]")


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def set_path(document: Any, path: str, value: Any) -> None:
    """Set ``value`` at a localisation key such as ``bots[0].commandLists[1].commands[2].title``."""
    steps: list[str | int] = [name if name else int(index) for name, index in _STEP.findall(path)]
    target = document
    for step in steps[:-1]:
        target = target[step]
    target[steps[-1]] = value


def load_locales() -> dict[str, dict[str, str]]:
    """Every localisation file by its language tag, checked against the Teams key rules."""
    locales: dict[str, dict[str, str]] = {}
    for language, tag in LANGUAGE_TAGS.items():
        path = LOCALES_DIR / f"{tag}.json"
        if not path.is_file():
            raise PackageError(f"{path}: missing (language {language})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise PackageError(f"{path}: not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise PackageError(f"{path}: must be a JSON object")
        locales[tag] = data
    return locales


def check_locale(tag: str, data: dict[str, Any], expected: set[str]) -> list[str]:
    """Problems in one localisation file: unknown keys, lengths, empties, missing strings.

    Teams falls back to the manifest's language for a missing key, which would show a
    Norwegian command in a Finnish menu, so every string of the template is required here.
    """
    problems = []
    for key, value in data.items():
        if key == "$schema":
            if value != LOCALISATION_SCHEMA_URL:
                problems.append(f"$schema must be {LOCALISATION_SCHEMA_URL}")
            continue
        limit = next((n for pattern, n in LOCALISATION_KEYS if pattern.match(key)), None)
        if limit is None:
            problems.append(f"{key}: not a key the Teams localisation schema allows")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"{key}: must be a non-empty string")
        elif len(value) > limit:
            problems.append(f"{key}: {len(value)} characters, at most {limit}")
        elif key not in expected:
            problems.append(f"{key}: no such string in manifest.template.json")
    for key in sorted((expected | set(LOCALISATION_REQUIRED)) - set(data)):
        problems.append(f"{key}: missing")
    return [f"locales/{tag}.json: {problem}" for problem in problems]


def build_manifest(
    settings: PackageSettings, locales: dict[str, dict[str, str]], warnings: list[str]
) -> dict[str, Any]:
    """The manifest for these settings: the template, the ids, and the default language."""
    bot_id = settings.APP_ID.strip()
    if not bot_id:
        raise PackageError(
            "MicrosoftAppId is empty: set it to the bot's Microsoft App ID "
            "(printed by deploy/azure/register-bot.sh) and build again"
        )
    if not GUID.match(bot_id):
        raise PackageError(f"MicrosoftAppId must be a GUID, got {bot_id!r}")
    app_id = settings.teams_app_id.strip() or stable_app_id(bot_id)
    if not GUID.match(app_id):
        raise PackageError(f"KOLLEGA_TEAMS_APP_ID must be a GUID, got {app_id!r}")
    version = settings.teams_app_version.strip() or project_version()
    if not SEMVER.match(version):
        raise PackageError(f"KOLLEGA_TEAMS_APP_VERSION must look like 1.2.3, got {version!r}")

    template = json.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    expected = set(localisable_paths(template))
    problems = [p for tag, data in locales.items() for p in check_locale(tag, data, expected)]
    if problems:
        raise PackageError("localisation files:\n  " + "\n  ".join(problems))

    default_tag = LANGUAGE_TAGS[settings.default_language]
    body = copy.deepcopy(template)
    for key in expected:
        set_path(body, key, locales[default_tag][key])
    body["bots"][0] = {"botId": bot_id, **body["bots"][0]}
    body["validDomains"] = _valid_domains(settings)
    return {
        "$schema": body.pop("$schema"),
        "manifestVersion": body.pop("manifestVersion"),
        "version": version,
        "id": app_id,
        "localizationInfo": {
            "defaultLanguageTag": default_tag,
            "additionalLanguages": [
                {"languageTag": tag, "file": f"{tag}.json"} for tag in locales if tag != default_tag
            ],
        },
        "developer": _developer(settings, warnings),
        **body,
    }


# --- checks -----------------------------------------------------------------------------------


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    """Every way ``manifest`` breaks the v1.30 schema, with where, as plain lines."""
    try:  # imported here so a missing jsonschema is a clear message, not a traceback
        from jsonschema import Draft7Validator
    except ImportError as error:
        raise PackageError("jsonschema is not installed: pip install jsonschema==4.26.0") from error

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    # No format checking of the schema: its "\p{L}" pattern is valid for Teams, not Python re.
    Draft7Validator.check_schema(schema, format_checker=None)
    errors = sorted(Draft7Validator(schema).iter_errors(manifest), key=lambda e: e.json_path)
    problems = [f"{error.json_path}: {error.message}" for error in errors]
    if manifest.get("manifestVersion") != MANIFEST_VERSION:
        problems.append(f"$.manifestVersion: must be {MANIFEST_VERSION!r}")
    if manifest.get("$schema") != MANIFEST_SCHEMA_URL:
        problems.append(f"$.$schema: must be {MANIFEST_SCHEMA_URL}")
    return problems


@dataclass(frozen=True, slots=True)
class Png:
    """A decoded PNG: its size and every pixel as RGBA."""

    width: int
    height: int
    has_alpha: bool
    pixels: list[tuple[int, int, int, int]]


def _unfilter(raw: bytes, width: int, height: int, channels: int) -> bytes:
    """Undo PNG's per-row filters (8-bit samples), as the PNG specification defines them."""
    stride = width * channels
    out = bytearray()
    previous = bytearray(stride)
    position = 0
    for _ in range(height):
        kind = raw[position]
        row = bytearray(raw[position + 1 : position + 1 + stride])
        position += 1 + stride
        for i in range(stride):
            left = row[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                row[i] = (row[i] + predictor) & 0xFF
            elif kind != 0:
                raise PackageError(f"unknown PNG filter type {kind}")
        out += row
        previous = row
    return bytes(out)


def read_png(data: bytes) -> Png:
    """Decode a non-interlaced 8-bit PNG with the standard library only.

    The packager checks the icons' pixels, and ops should not need an image library to
    build a zip; Pillow is only for drawing the icons (make_icons.py), which writes exactly
    this kind of PNG.
    """
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise PackageError("not a PNG file")
    position, chunks, idat = 8, {}, bytearray()
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise PackageError(f"PNG chunk {kind!r} is damaged (CRC mismatch)")
        if kind == b"IDAT":
            idat += body
        else:
            chunks.setdefault(kind, body)
        position += 12 + length
        if kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise PackageError("unsupported PNG: save it as 8-bit RGB/RGBA, not interlaced")
    samples = _unfilter(zlib.decompress(bytes(idat)), width, height, channels)
    groups = [samples[i : i + channels] for i in range(0, len(samples), channels)]
    if colour == 0:
        pixels = [(g[0], g[0], g[0], 255) for g in groups]
    elif colour == 2:
        pixels = [(g[0], g[1], g[2], 255) for g in groups]
    elif colour == 4:
        pixels = [(g[0], g[0], g[0], g[1]) for g in groups]
    elif colour == 6:
        pixels = [(g[0], g[1], g[2], g[3]) for g in groups]
    else:
        palette, alphas = chunks[b"PLTE"], chunks.get(b"tRNS", b"")
        pixels = [
            (*palette[3 * g[0] : 3 * g[0] + 3], alphas[g[0]] if g[0] < len(alphas) else 255)
            for g in groups
        ]
    has_alpha = colour in (4, 6) or (colour == 3 and b"tRNS" in chunks)
    return Png(width, height, has_alpha, pixels)


def icon_errors(name: str, data: bytes) -> list[str]:
    """Teams' icon rules: colour 192x192 and visible; outline 32x32, white on transparent."""
    kind = next(k for k, (file, _) in ICONS.items() if file == name)
    size = ICONS[kind][1]
    try:
        image = read_png(data)
    except (PackageError, KeyError, struct.error, zlib.error) as error:
        return [f"{name}: cannot read the PNG ({error})"]
    if (image.width, image.height) != (size, size):
        return [f"{name}: is {image.width}x{image.height}, must be {size}x{size}"]
    if not any(alpha for *_, alpha in image.pixels):
        return [f"{name}: is completely transparent"]
    if kind == "color":
        return []
    problems = []
    if not image.has_alpha:
        problems.append(f"{name}: needs a transparent background (an alpha channel)")
    off_white = sum(1 for *rgb, alpha in image.pixels if alpha and tuple(rgb) != (255, 255, 255))
    if off_white:
        problems.append(f"{name}: {off_white} pixels are neither white nor fully transparent")
    if not any(alpha == 0 for *_, alpha in image.pixels):
        problems.append(f"{name}: has no transparent pixels; the background must be transparent")
    return problems


# --- build ------------------------------------------------------------------------------------


def build(settings: PackageSettings) -> Package:
    """Assemble and check the package; raise ``PackageError`` listing every problem found."""
    warnings: list[str] = []
    locales = load_locales()
    manifest = build_manifest(settings, locales, warnings)
    files = {
        file: (HERE / file).read_bytes() for file, _ in ICONS.values() if (HERE / file).is_file()
    }
    problems = schema_errors(manifest)
    for file, _ in ICONS.values():
        if file not in files:
            problems.append(f"{file}: missing; run deploy/teams/make_icons.py")
        else:
            problems += icon_errors(file, files[file])
    if problems:
        raise PackageError("the package is not valid:\n  " + "\n  ".join(problems))
    for entry in manifest["localizationInfo"]["additionalLanguages"]:
        files[entry["file"]] = (LOCALES_DIR / entry["file"]).read_bytes()
    return Package(manifest, files, tuple(warnings))


def write_zip(package: Package, out: Path) -> None:
    """Write the zip with fixed timestamps and order, so equal input gives equal bytes."""
    entries = {
        "manifest.json": (
            json.dumps(package.manifest, ensure_ascii=False, indent=2) + "\n"
        ).encode(),
        **dict(sorted(package.files.items())),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build kollega's Microsoft Teams app package from the settings "
        "(MicrosoftAppId, KOLLEGA_TEAMS_*; see this script's docstring).",
    )
    parser.add_argument("--out", required=True, type=Path, help="the zip file to write")
    args = parser.parse_args(argv)
    try:
        if args.out.suffix.lower() != ".zip":
            raise PackageError(f"--out must name a .zip file, got {args.out}")
        package = build(PackageSettings())
        write_zip(package, args.out)
    except ValidationError as error:
        print(f"error: invalid settings:\n{error}", file=sys.stderr)
        return 1
    except (PackageError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for warning in package.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    manifest = package.manifest
    print(
        f"wrote {args.out}: Teams app {manifest['id']} version {manifest['version']} "
        f"for bot {manifest['bots'][0]['botId']}, "
        f"languages {manifest['localizationInfo']['defaultLanguageTag']} + "
        + ", ".join(e["languageTag"] for e in manifest["localizationInfo"]["additionalLanguages"])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
