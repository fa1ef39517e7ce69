"""A profile as a speedscope file (https://www.speedscope.app/file-format-schema.json),
one "sampled" profile in milliseconds; speedscope opens it offline too
(``npx speedscope file.json``).

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import json
import typing as t

if t.TYPE_CHECKING:
    from .sampler import Frame
    from .sampler import Profile

#: The JSON schema a speedscope file names.
SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def speedscope(profile: Profile, name: str) -> dict[str, t.Any]:
    """The speedscope document of *profile*: each unique stack once, its weight the
    milliseconds it was seen for.

    :param profile: a finished profile.
    :param name: the profile's name (e.g. ``GET /report``).
    """
    index: dict[Frame, int] = {}
    frames: list[dict[str, t.Any]] = []
    samples: list[list[int]] = []
    weights: list[float] = []
    for stack, seconds in profile.stacks:
        sample = []
        for frame in stack:
            number = index.get(frame)
            if number is None:
                number = index[frame] = len(frames)
                entry: dict[str, t.Any] = {"name": frame[0]}
                if frame[1]:
                    entry["file"] = frame[1]
                    entry["line"] = frame[2]
                frames.append(entry)
            sample.append(number)
        samples.append(sample)
        weights.append(round(seconds * 1000.0, 6))
    return {
        "$schema": SCHEMA,
        "name": name,
        "exporter": "Flask-Observe",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": name,
                "unit": "milliseconds",
                "startValue": 0,
                "endValue": round(sum(weights), 6),
                "samples": samples,
                "weights": weights,
            }
        ],
    }


def speedscope_json(profile: Profile, name: str) -> str:
    """:func:`speedscope` serialised compactly.

    :param profile: a finished profile.
    :param name: the profile's name.
    """
    return json.dumps(speedscope(profile, name), separators=(",", ":"))
