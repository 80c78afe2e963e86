"""Status badges: an icon and a word for every state, so a state never rests on colour alone.

The icons are plain symbols that common system fonts carry (DejaVu has them all), not emoji, which a
server or kiosk without an emoji font would draw as empty boxes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Badge:
    """How a state looks: `icon` (decorative, hidden from screen readers), `word` (what it says) and
    `tone` (the CSS class that colours it)."""

    icon: str
    word: str
    tone: str


_BADGES = {
    "pending": Badge("…", "pending", "waiting"),
    "queued": Badge("◷", "queued", "waiting"),
    "running": Badge("▶", "running", "active"),
    "paused": Badge("‖", "paused", "waiting"),
    "completed": Badge("✔", "completed", "good"),
    "failed": Badge("✖", "failed", "bad"),
    "cancelled": Badge("⊘", "cancelled", "neutral"),
    # model versions and deployments
    "draft": Badge("✎", "draft", "neutral"),
    "testing": Badge("◐", "testing", "waiting"),
    "approved": Badge("✔", "approved", "good"),
    "released": Badge("▲", "released", "good"),
    "deprecated": Badge("⊘", "deprecated", "neutral"),
    "rejected": Badge("✖", "rejected", "bad"),
    "passed": Badge("✔", "passed", "good"),
    "not passed": Badge("✖", "not passed", "bad"),
    "downloading": Badge("↓", "downloading", "active"),
    "installing": Badge("⚙", "installing", "active"),
    "scheduled": Badge("◷", "scheduled", "waiting"),
    "rolling back": Badge("↺", "rolling back", "waiting"),
    "halted": Badge("■", "halted", "bad"),
    "rolled back": Badge("↺", "rolled back", "neutral"),
    "active": Badge("●", "active", "good"),
    "archived": Badge("■", "archived", "neutral"),
    "ready": Badge("✔", "ready", "good"),
    "not ready": Badge("✖", "not ready", "bad"),
    "online": Badge("●", "online", "good"),
    "offline": Badge("○", "offline", "bad"),
    "drift": Badge("≠", "drift", "bad"),
    "in step": Badge("=", "in step", "good"),
    "alive": Badge("●", "alive", "good"),
    "lost": Badge("○", "lost", "bad"),
}


def badge_for(state: str) -> Badge:
    """The badge of `state` (a job, version or trainer state, lower case); unknown states get a `?`."""
    return _BADGES.get(state, Badge("?", state or "unknown", "neutral"))
