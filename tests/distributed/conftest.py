from tests.support.redis import *  # noqa: F403
