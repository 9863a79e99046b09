"""Draw kollega's two Teams icons, ``color.png`` and ``outline.png``, next to this script.

Run once by a developer (``python deploy/teams/make_icons.py``, needs Pillow) and commit the
PNGs: building the app package then needs no image library, and every build ships the very
same bytes. The logo is drawn from shapes, not a font, so it looks the same on every machine.

- ``color.png``: 192x192, a white speech bubble holding a "k" on the accent colour.
- ``outline.png``: 32x32, the same bubble as a white outline with a white "k" on transparency;
  Teams refuses an outline icon with any pixel that is neither white nor fully transparent,
  so it is built as white everywhere with the drawing as its alpha mask.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
ACCENT = (31, 111, 139)  # #1F6F8B, also the manifest's accentColor
WHITE = (255, 255, 255)
SCALE = 8  # draw large, then shrink: smooth edges without a font or anti-aliasing support

# The logo on a 32-unit grid, so both icons share one geometry.
BUBBLE = (3.0, 4.0, 29.0, 23.0)  # left, top, right, bottom of the bubble's body
BUBBLE_RADIUS = 5.0
TAIL = ((8.0, 22.0), (8.0, 29.0), (15.0, 22.0))  # the speech bubble's tail, bottom left
K_STEM = ((13.0, 8.5), (13.0, 19.0))
K_ARM = ((20.0, 11.0), (14.0, 15.0))
K_LEG = ((15.5, 14.5), (20.0, 19.0))

Fill = int | tuple[int, int, int]


def _scaled(
    points: tuple[tuple[float, float], ...], unit: float, offset: float = 0.0
) -> list[tuple[float, float]]:
    return [(offset + x * unit, offset + y * unit) for x, y in points]


def _draw_k(
    draw: ImageDraw.ImageDraw, unit: float, offset: float, width: float, fill: Fill
) -> None:
    """The "k" as three strokes with round ends, so it still reads as a letter at 32 pixels."""
    radius = width / 2
    for stroke in (K_STEM, K_ARM, K_LEG):
        points = _scaled(stroke, unit, offset)
        draw.line(points, fill=fill, width=round(width))
        for x, y in points:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)


def _draw_bubble(
    draw: ImageDraw.ImageDraw, unit: float, offset: float, fill: Fill, inset: float = 0.0
) -> None:
    left, top, right, bottom = BUBBLE
    box = [offset + v * unit for v in (left + inset, top + inset, right - inset, bottom - inset)]
    draw.rounded_rectangle(box, radius=(BUBBLE_RADIUS - inset) * unit, fill=fill)
    if not inset:
        draw.polygon(_scaled(TAIL, unit, offset), fill=fill)


def color_icon(size: int = 192) -> Image.Image:
    """Solid accent background, white bubble, accent-coloured "k"; the logo spans ~2/3."""
    big = size * SCALE
    unit = big * 0.68 / 32
    offset = (big - 32 * unit) / 2
    image = Image.new("RGB", (big, big), ACCENT)
    draw = ImageDraw.Draw(image)
    _draw_bubble(draw, unit, offset, WHITE)
    _draw_k(draw, unit, offset, 2.6 * unit, ACCENT)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def outline_icon(size: int = 32) -> Image.Image:
    """White on transparent: the bubble as a 2-unit ring with its tail, the "k" inside."""
    big = size * SCALE
    unit = big / 32
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    _draw_bubble(draw, unit, 0.0, 255)
    _draw_bubble(draw, unit, 0.0, 0, inset=2.0)  # hollow the body out, the tail stays solid
    _draw_k(draw, unit, 0.0, 2.4 * unit, 255)
    icon = Image.new("RGBA", (size, size), (*WHITE, 0))
    # Every pixel is white and only its alpha varies: smooth edges, still "white only".
    icon.putalpha(mask.resize((size, size), Image.Resampling.LANCZOS))
    return icon


def main() -> None:
    color_icon().save(HERE / "color.png", optimize=True)
    outline_icon().save(HERE / "outline.png", optimize=True)
    print(f"wrote {HERE / 'color.png'} and {HERE / 'outline.png'}")


if __name__ == "__main__":
    main()
