from tests.support.redis import *  # noqa: F403
from tests.support.workers import *  # noqa: F403
