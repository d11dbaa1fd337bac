"""The self-study loop: working copies and resets (`workspace`), hints, the watch mode,
progress, the reference solution after passing, the study notes, and their HTML templates."""
