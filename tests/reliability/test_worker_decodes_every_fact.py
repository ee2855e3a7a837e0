"""A `crm project` worker (its own process, its own imports) follows a log that holds every kind of fact.

The mailing planner stores platform-made facts (MailingScheduled, MailingSuppressed)
whose topics are registered when their module is imported; a worker process that
never imports it cannot decode them and every view stops.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from api.bootstrap import build_platform
from api.settings import Settings
from api.store.mailing_plans import planner_of
from scripts.soak import SECRET, server_env
from tests.factories import envelope, new_id, registered


def test_the_worker_process_decodes_mailing_decisions(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'crm.db'}"
    platform = build_platform(Settings(database_url=database_url, secret_key=SECRET))
    try:
        # A couple at one address: one piece scheduled, the other suppressed.
        wang = registered(name="王芳", line="北京市朝阳区建国路88号3号楼2单元501室")
        zhang = registered(name="张伟", line="北京市朝阳区建国路88号3号楼2单元501室")
        campaign_id = new_id()
        launch = envelope(
            "CampaignLaunched",
            {
                "campaign_id": campaign_id,
                "name": "春节理财推广",
                "channel": "mail",
                "purpose": "marketing",
            },
        )
        platform.ingestor.ingest([wang, zhang, launch], atomic=True)
        answer = planner_of(platform).plan(
            campaign_id,
            [wang["data"]["customer_id"], zhang["data"]["customer_id"]],
            new_id(),
        )
        assert answer["scheduled"] and answer["suppressed"]
        head = int(platform.app.recorder.max_notification_id() or 0)
        with platform.db.transaction() as cur:
            cur.execute("DELETE FROM projection_positions")  # the worker starts from 0
    finally:
        platform.close()
    crm = Path(sys.executable).parent / "crm"
    log_path = tmp_path / "project.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [str(crm), "project"], env=server_env(database_url), stdout=log, stderr=log
        )
    try:
        reached = wait_for_all_views(database_url, head, timeout=15)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert reached >= head, log_path.read_text()[-3000:]


def wait_for_all_views(database_url: str, head: int, timeout: float) -> int:
    platform = build_platform(
        Settings(database_url=database_url, secret_key=SECRET), migrate=False
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reached = platform.runner.min_position()
            if reached >= head:
                return reached
            time.sleep(0.2)
        return platform.runner.min_position()
    finally:
        platform.close()
