"""Human-readable bits shared by the workflow's summaries and the starter's output."""


def duration_text(seconds: float) -> str:
    """`90` -> `1m30s`, `3600` -> `1h`: short enough for a Web UI timer summary."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts)
