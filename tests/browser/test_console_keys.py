"""The console on a server that requires API keys (AUTH_REQUIRED): the page asks for a key,
then shows what that key may see; thumbnails load with the key; the job page, whose event
stream cannot carry the key, follows the job by polling; a tenant's key may not drain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from distributed.config import QueueConfig
from tests.support.browser import run_server, screenshot
from tests.support.server import ApiServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def console_server(console_config: QueueConfig,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    yield from run_server(console_config, tmp_path_factory.mktemp("console-keys"),
                          AUTH_REQUIRED="1")


def test_with_keys_the_console_asks_for_one_and_polls_the_job(
    console_server, console_queue, page, start_worker
):
    tenant = console_server.manage("createapikey", "tenant A").strip()
    bearer = {"Authorization": f"Bearer {tenant}"}
    job = requests.post(f"{console_server.url}/api/process-batch/distributed/",
                        json={"filters": ["sepia"], "images": ["sample-landscape"] * 3},
                        headers=bearer, timeout=30).json()
    # Given the job page opened without a key: the page asks for one
    page.goto(f"{console_server.url}/console/jobs/{job['id']}/")
    page.locator("#keyform").wait_for()
    screenshot(page, "key-form")
    # When the tenant's key is given, the page shows the job, following it by polling (an
    # EventSource cannot send the key), and its thumbnails load through the key
    page.fill("#key", tenant)
    page.click("#keyform button")
    page.locator("#status.queued").wait_for()
    assert page.locator("#keyform").is_hidden()
    page.locator("#live", has_text="polling").wait_for()
    start_worker("w-keys", media_root=console_server.media_root)
    page.locator("#status.completed").wait_for()
    images = page.locator("#thumbs img")
    assert images.count() == 3
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thumbs img')].every("
        "img => img.complete && img.naturalWidth > 0 && img.src.startsWith('blob:'))")
    # A tenant's key may not drain a worker: the page says why
    page.goto(f"{console_server.url}/console/workers/w-keys/")
    page.locator("#drain").click()
    page.locator("#flash.error", has_text="403").wait_for()
    assert "admin" in page.locator("#flash").inner_text()
    # The only console errors are the refused requests (401 before the key, the 403)
    assert all(" 401 " in line or " 403 " in line for line in page.errors), page.errors
    assert not [line for line in page.errors if line.startswith("pageerror")]
