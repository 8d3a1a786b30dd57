"""Settings of the server the browser tests drive: the project's own settings, with static
files served by WhiteNoise straight from the finders (no collectstatic, DEBUG stays off)."""

from config.settings import *  # noqa: F403

WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False
