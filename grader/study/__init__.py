"""The self-study loop: working copies and resets (`workspace`), hints, the watch mode,
progress, the reference solution after passing, and their HTML templates."""
